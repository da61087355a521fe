"""llm2silicon hwgen: Amaranth generator for the vector-tile mesh and its synthesis collateral."""

__all__: list[str] = []
