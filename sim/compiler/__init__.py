"""Kernel compiler: one op (or one tile's share of it) -> a tile program with the model's loop nest."""

from .program import Output, RunOutcome, TileProgram, run_program

__all__ = ["TileProgram", "Output", "RunOutcome", "run_program"]
