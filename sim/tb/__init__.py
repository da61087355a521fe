"""cocotb 2.x testbenches for the emitted mesh (driven by :mod:`sim.rtl`)."""

__all__: list[str] = []
