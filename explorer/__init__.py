"""llm2silicon explorer: design schema, technology nodes, workloads, PPA model and search."""

__all__: list[str] = []
