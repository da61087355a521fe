"""The vectorised analytical PPA model."""

from .batch import DesignBatch, from_designs
from .model import ASSUMPTIONS, BOUNDS, VIOLATIONS, PhaseResult, PPAResult, evaluate
from .tables import PhaseTable, WorkloadTables, build_tables

__all__ = ["DesignBatch", "from_designs", "evaluate", "PPAResult", "PhaseResult", "BOUNDS",
           "VIOLATIONS", "ASSUMPTIONS", "WorkloadTables", "PhaseTable", "build_tables"]
