"""llm2silicon sim: kernel compiler, cocotb + Verilator runs, model-vs-RTL fidelity."""

__all__: list[str] = []
