"""Op-kind indices shared by the op tables and the kernel model."""

from ..workloads.graph import OP_KINDS

__all__ = ["KIND_INDEX"]

KIND_INDEX = {k: i for i, k in enumerate(OP_KINDS)}
