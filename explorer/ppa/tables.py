"""Workload tables: op graphs flattened into numpy arrays, identical ops collapsed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from .. import contract as C
from ..workloads.graph import Op, OpGraph
from .kernels import KernelPlan, plan_kernels

__all__ = ["PhaseTable", "WorkloadTables", "build_tables", "KIND_INDEX"]

from .kinds import KIND_INDEX

#: Op fields that define an op's cost; ops equal in all of them are collapsed into one row.
_SIG_FIELDS = ("kind", "dtype", "batch", "m", "k", "n", "elems", "flops", "weight_bytes",
               "weight_read_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes",
               "kv_write_bytes", "causal")


@dataclass(frozen=True)
class PhaseTable:
    """One phase of a workload as arrays.

    ``u_*`` arrays describe the U unique op signatures; ``op_uid[i]`` and ``op_pos[i]`` map
    the i-th op of the phase (topological order) to its signature and to its index in the
    workload-wide op-name list; ``edge_*`` arrays list producer -> consumer activations.
    Placements are pipelines of contiguous ranges of name positions, so ``cum_*`` / ``cut_*``
    tables give any stage's op counts and boundary traffic by two lookups.
    """

    phase: str
    tokens: int                  # tokens processed per execution of the phase
    u_kind: np.ndarray           # int, index into OP_KINDS
    u_int8: np.ndarray           # bool
    u_batch: np.ndarray
    u_m: np.ndarray
    u_k: np.ndarray
    u_n: np.ndarray
    u_elems: np.ndarray
    u_flops: np.ndarray
    u_weight_bytes: np.ndarray
    u_weight_read_bytes: np.ndarray
    u_act_in_bytes: np.ndarray
    u_act_out_bytes: np.ndarray
    u_kv_read_bytes: np.ndarray
    u_kv_write_bytes: np.ndarray
    u_share: np.ndarray          # query heads sharing one KV head (GQA) for attention ops, else 1
    op_uid: np.ndarray
    op_pos: np.ndarray
    edge_src: np.ndarray         # op index within the phase
    edge_dst: np.ndarray
    edge_bytes: np.ndarray
    cum_uid: np.ndarray          # [names + 1, U]: ops of each signature before a name position
    cut_bits: np.ndarray         # [names + 1]: activation bits on edges crossing a cut there
    cum_kv_bytes: np.ndarray     # [names + 1]: KV-cache bytes held by ops before a position

    @property
    def n_unique(self) -> int:
        return len(self.u_kind)

    @property
    def n_ops(self) -> int:
        return len(self.op_uid)

    @property
    def flops(self) -> float:
        return float(self.u_flops[self.op_uid].sum())


@dataclass(frozen=True)
class WorkloadTables:
    """All phases of a workload plus the workload-wide op-name list placement refers to."""

    workload: str
    op_names: tuple[str, ...]
    op_weight_bytes: np.ndarray   # per op name: weight storage it owns (bytes)
    op_cost: np.ndarray           # per op name: FLOPs summed over phases (placer balance)
    cum_weight_bytes: np.ndarray  # [names + 1]: weight bytes owned by ops before a position
    phases: Mapping[str, PhaseTable]
    plan: KernelPlan              # the kernel model of every phase's ops, phases concatenated
    phase_cols: Mapping[str, slice]  # columns of each phase in ``plan``
    params: int
    meta: Mapping[str, Mapping[str, object]]   # per phase: the OpGraph meta

    @cached_property
    def name_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.op_names)}

    @cached_property
    def weight_bytes(self) -> int:
        return int(self.op_weight_bytes.sum())

    @cached_property
    def u(self) -> Mapping[str, np.ndarray]:
        """Every phase's ``u_*`` arrays concatenated in ``plan`` column order (``[U]``), and
        ``cum_uid`` (``[names + 1, U]``): the model handles all phases' ops in one pass and
        slices ``phase_cols`` only for per-phase totals (computed once per workload)."""
        out = {f.name[2:]: np.concatenate([getattr(pt, f.name) for pt in self.phases.values()])
               for f in fields(PhaseTable) if f.name.startswith("u_")}
        # Float counts (exact below 2**53): stage totals come out as the model's float counts.
        out["cum_uid"] = np.concatenate([pt.cum_uid for pt in self.phases.values()], axis=1).astype(float)
        out["any_int8"] = np.array(bool(out["int8"].any()))
        out["is_mm"] = out["kind"] == KIND_INDEX["matmul"]
        # Streamed B operands are re-read once per group of A rows (one accumulator per row).
        out["regroup"] = -(-np.where(out["is_mm"], out["batch"] * out["m"], out["share"] * out["m"])
                           // C.ACCS)
        return out

    @cached_property
    def phase_stack(self) -> Mapping[str, object]:
        """Phases as an axis (``P``, in ``phases`` order): ``onehot`` ``[U, P]`` (1.0 where
        op column u belongs to phase p), ``onehot_mm`` (matmuls only), ``phase_of`` ``[U]``,
        ``cut_bits`` ``[names + 1, P]``, ``tokens`` ``[P]`` and each phase's ``index``."""
        names = list(self.phases)
        phase_of = np.concatenate([np.full(pt.n_unique, p) for p, pt in enumerate(self.phases.values())])
        onehot = (phase_of[:, None] == np.arange(len(names))).astype(float)
        return {"onehot": onehot, "onehot_mm": onehot * self.u["is_mm"][:, None],
                "phase_of": phase_of.astype(np.int64),
                "cut_bits": np.stack([pt.cut_bits for pt in self.phases.values()], axis=1),
                "tokens": np.array([float(pt.tokens) for pt in self.phases.values()]),
                "index": {n: p for p, n in enumerate(names)}}


def _phase_table(graph: OpGraph, name_pos: Mapping[str, int], n_names: int) -> PhaseTable:
    ops: list[Op] = graph.ops
    heads = int(graph.meta.get("num_heads", 1) or 1)
    share = max(1, heads // max(1, int(graph.meta.get("num_kv_heads", heads) or heads)))
    index = {op.name: i for i, op in enumerate(ops)}
    sigs: dict[tuple, int] = {}
    rows: list[Op] = []
    op_uid = np.empty(len(ops), np.int64)
    for i, op in enumerate(ops):
        sig = tuple(getattr(op, f) for f in _SIG_FIELDS)
        uid = sigs.setdefault(sig, len(sigs))
        if uid == len(rows):
            rows.append(op)
        op_uid[i] = uid

    def col(f: str, dtype: type = np.int64) -> np.ndarray:
        return np.array([getattr(r, f) for r in rows], dtype=dtype)

    # Causal attention skips masked blocks: model it by the mean keys per query row.
    mean_keys = np.array([-(-r.score_elems // max(r.m, 1)) if r.causal else r.keys
                          for r in rows], np.int64)
    is_qk = np.array([r.kind == "attn_qk" for r in rows])
    is_av = np.array([r.kind == "attn_av" for r in rows])

    edges = [(index[u], index[v], float(d.get("bytes", 0))) for u, v, d in graph.graph.edges(data=True)]
    e = np.array(edges, dtype=np.float64).reshape(-1, 3)
    op_pos = np.array([name_pos[op.name] for op in ops], np.int64)
    # Cumulative tables over workload name positions (stages are contiguous name ranges).
    onehot = np.zeros((n_names + 1, len(rows)), np.int64)
    np.add.at(onehot, (op_pos + 1, op_uid), 1)
    src_pos, dst_pos = op_pos[e[:, 0].astype(np.int64)], op_pos[e[:, 1].astype(np.int64)]
    if (src_pos >= dst_pos).any():
        raise ValueError(f"{graph.phase}: op order of the phase disagrees with the workload order")
    cut = np.zeros(n_names + 2)
    np.add.at(cut, src_pos + 1, e[:, 2] * 8)
    np.add.at(cut, dst_pos + 1, -e[:, 2] * 8)
    kv = np.zeros(n_names + 1)
    np.add.at(kv, op_pos + 1, [float(op.kv_read_bytes) for op in ops])
    is_attn = np.array([r.kind in ("attn_qk", "attn_av") for r in rows])
    return PhaseTable(
        phase=graph.phase,
        tokens=int(graph.meta.get("tokens", 1)),
        u_kind=np.array([KIND_INDEX[r.kind] for r in rows], np.int64),
        u_int8=np.array([r.dtype == "int8" for r in rows]),
        u_batch=col("batch"), u_m=col("m"),
        u_k=np.where(is_av, mean_keys, col("k")), u_n=np.where(is_qk, mean_keys, col("n")),
        u_elems=col("elems"),
        u_flops=col("flops", np.float64),
        u_weight_bytes=col("weight_bytes", np.float64),
        u_weight_read_bytes=col("weight_read_bytes", np.float64),
        u_act_in_bytes=col("act_in_bytes", np.float64),
        u_act_out_bytes=col("act_out_bytes", np.float64),
        u_kv_read_bytes=col("kv_read_bytes", np.float64),
        u_kv_write_bytes=col("kv_write_bytes", np.float64),
        u_share=np.where(is_attn, share, 1).astype(np.int64),
        op_uid=op_uid, op_pos=op_pos,
        edge_src=e[:, 0].astype(np.int64), edge_dst=e[:, 1].astype(np.int64), edge_bytes=e[:, 2],
        cum_uid=np.cumsum(onehot, axis=0), cut_bits=np.cumsum(cut)[:n_names + 1],
        cum_kv_bytes=np.cumsum(kv),
    )


def build_tables(workload: str, graphs: Sequence[OpGraph]) -> WorkloadTables:
    """Flatten the phase graphs of one workload into :class:`WorkloadTables`.

    Ops with the same name in several phases (the decoder's weights serve prefill and
    decode) are one placement unit: they own their weights once.
    """
    names: list[str] = []
    pos: dict[str, int] = {}
    weight: list[float] = []
    cost: list[float] = []
    for g in graphs:
        for op in g.ops:
            if op.name not in pos:
                pos[op.name] = len(names)
                names.append(op.name)
                weight.append(float(op.weight_bytes))
                cost.append(0.0)
            cost[pos[op.name]] += float(op.flops)
            weight[pos[op.name]] = max(weight[pos[op.name]], float(op.weight_bytes))
    meta = {g.phase: dict(g.meta) for g in graphs}
    phases = {g.phase: _phase_table(g, pos, len(names)) for g in graphs}
    cols, at = {}, 0
    for name, pt in phases.items():
        cols[name] = slice(at, at + pt.n_unique)
        at += pt.n_unique

    def cat(f: str) -> np.ndarray:
        return np.concatenate([getattr(pt, f) for pt in phases.values()])

    plan = plan_kernels(cat("u_kind"), cat("u_int8"), cat("u_batch"), cat("u_m"), cat("u_k"),
                        cat("u_n"), cat("u_elems"), cat("u_share"))
    return WorkloadTables(workload=workload, op_names=tuple(names),
                          op_weight_bytes=np.array(weight), op_cost=np.array(cost),
                          cum_weight_bytes=np.concatenate([[0.0], np.cumsum(weight)]),
                          phases=phases, plan=plan, phase_cols=cols, params=int(graphs[0].meta.get("params", 0)) if graphs else 0,
                          meta=meta)
