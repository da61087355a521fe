"""Operator graphs: the workload as a networkx DiGraph of typed ops."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

__all__ = ["Op", "OpGraph", "OP_KINDS", "PHASES", "causal_pairs"]

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
    #: attn_qk / attn_av under a causal mask: query i (of m) sees the first n - m + 1 + i keys
    #: (keys are ``n`` for attn_qk, ``k`` for attn_av), so only those score entries are computed
    #: (masked blocks skipped, as FlashAttention-style kernels do). False: the full m x keys block.
    causal: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"Op.kind must be one of {', '.join(OP_KINDS)}, not {self.kind!r}")
        if self.dtype not in ("fp16", "int8"):
            raise ValueError(f"Op.dtype must be 'fp16' or 'int8', not {self.dtype!r}")
        if self.causal:
            if self.kind not in ("attn_qk", "attn_av"):
                raise ValueError(f"Op.causal applies to attn_qk/attn_av only, not {self.kind!r}")
            if self.keys < self.m:
                raise ValueError(f"causal {self.kind} needs at least m={self.m} keys, not {self.keys}")

    @property
    def keys(self) -> int:
        """Keys attended per query row of an attention op (n for attn_qk, k for attn_av)."""
        return self.n if self.kind == "attn_qk" else self.k

    @property
    def score_elems(self) -> int:
        """Score-matrix entries one (sequence, head) computes: m x keys, or the causal part."""
        if self.kind not in ("attn_qk", "attn_av"):
            return 0
        if self.causal:
            return causal_pairs(self.m, self.keys)
        return self.m * self.keys

    @property
    def macs(self) -> int:
        """Multiply-accumulates of a GEMM-like op (0 for element-wise ops).

        Causal attention counts only the unmasked score entries (see :attr:`causal`).
        """
        if self.kind == "matmul" or (self.kind in ("attn_qk", "attn_av") and not self.causal):
            return self.batch * self.m * self.k * self.n
        if self.kind == "attn_qk":
            return self.batch * self.k * self.score_elems
        if self.kind == "attn_av":
            return self.batch * self.n * self.score_elems
        return 0


def causal_pairs(m: int, keys: int) -> int:
    """(query, key) pairs under a causal mask: m new queries after keys - m earlier tokens.

    Query i (0-based) sees keys - m + 1 + i keys: sum = m * keys - m * (m - 1) / 2, which is
    S * (S + 1) / 2 for a whole prompt (m = keys = S).
    """
    return m * keys - m * (m - 1) // 2


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

    def total(self, attr: str) -> float:
        """Sum of one numeric :class:`Op` attribute (``flops``, ``kv_read_bytes``, ``macs``...)."""
        return sum(getattr(data["op"], attr) for _, data in self.graph.nodes(data=True))

    def kind_counts(self) -> dict[str, int]:
        """Number of ops of each kind present, in :data:`OP_KINDS` order."""
        counts = dict.fromkeys(OP_KINDS, 0)
        for _, data in self.graph.nodes(data=True):
            counts[data["op"].kind] += 1
        return {kind: c for kind, c in counts.items() if c}

    def op(self, name: str) -> Op:
        """The op called ``name`` (KeyError if absent)."""
        return self.graph.nodes[name]["op"]
