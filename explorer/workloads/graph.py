"""Operator graphs: the workload as a networkx DiGraph of typed ops."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

__all__ = ["Op", "OpGraph", "OP_KINDS", "PHASES"]

#: Op kinds the PPA model, kernel compiler and simulator understand.
#:  matmul   activations [batch, m, k] x weights [k, n] -> [batch, m, n] (weight in WMEM/off chip)
#:  attn_qk  per (sequence, head): q [m, k] x K^T [k, n] -> scores [m, n]; K from the KV cache
#:  attn_av  per (sequence, head): p [m, k] x V [k, n] -> [m, n]; V from the KV cache
#:  softmax  rows of length `n`, `elems` elements in all
#:  rmsnorm / layernorm  rows of length `n` (with a weight vector of `n`)
#:  rope     rotary embedding on `elems` elements
#:  silu_mul SwiGLU gate silu(a) * b on `elems` elements
#:  gelu     GELU on `elems` elements
#:  add      residual add on `elems` elements
#:  embed    table lookup: m rows of `n` gathered from a [k, n] table
#:  reshape  data movement only (pixel shuffle, concat); `elems` elements moved
OP_KINDS = ("matmul", "attn_qk", "attn_av", "softmax", "rmsnorm", "layernorm", "rope",
            "silu_mul", "gelu", "add", "embed", "reshape")
PHASES = ("prefill", "decode", "encode")


@dataclass(frozen=True)
class Op:
    """One operator instance.

    Shapes follow the GEMM convention ``[batch] x (m x k) @ (k x n)``; element-wise ops use
    ``elems`` (and ``n`` as the row length where rows matter). Byte counts are what one
    execution of the op reads or writes; ``weight_bytes`` is the weight storage the op owns
    (its slice of the model), ``weight_read_bytes`` what one execution reads of it.
    """

    name: str
    kind: str
    block: str                 # "decoder", "vision", "connector", "head"
    layer: int                 # layer index inside the block, -1 for none
    dtype: str = "fp16"        # "fp16" or "int8"
    batch: int = 1
    m: int = 0
    k: int = 0
    n: int = 0
    elems: int = 0
    flops: float = 0.0
    params: int = 0            # parameters this op owns (0 for a tied/shared weight)
    weight_bytes: int = 0
    weight_read_bytes: int = 0
    act_in_bytes: int = 0
    act_out_bytes: int = 0
    kv_read_bytes: int = 0
    kv_write_bytes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"Op.kind must be one of {', '.join(OP_KINDS)}, not {self.kind!r}")
        if self.dtype not in ("fp16", "int8"):
            raise ValueError(f"Op.dtype must be 'fp16' or 'int8', not {self.dtype!r}")

    @property
    def macs(self) -> int:
        """Multiply-accumulates of a GEMM-like op (0 for element-wise ops)."""
        if self.kind in ("matmul", "attn_qk", "attn_av"):
            return self.batch * self.m * self.k * self.n
        return 0


@dataclass
class OpGraph:
    """A workload phase as a DAG of :class:`Op` (node attribute ``op``).

    Edges carry ``bytes``: the activation tensor passed from producer to consumer.
    """

    workload: str
    phase: str
    graph: nx.DiGraph
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"OpGraph.phase must be one of {', '.join(PHASES)}, not {self.phase!r}")

    @property
    def ops(self) -> list[Op]:
        """Ops in a deterministic topological order."""
        return [self.graph.nodes[n]["op"] for n in nx.lexicographical_topological_sort(
            self.graph, key=lambda n: (self.graph.nodes[n]["op"].layer, n))]

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def flops(self) -> float:
        return float(sum(op.flops for op in self.ops))

    @property
    def weight_bytes(self) -> int:
        return int(sum(op.weight_bytes for op in self.ops))
