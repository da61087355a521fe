"""Timing and energy of one workload phase for a batch of designs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import contract as C
from ..tech.node import TechNode
from .kernels import OpCost, TileArrays
from .tables import WorkloadTables

__all__ = ["Entries", "PhaseResult", "OpTerms", "op_terms", "Groups", "group_terms", "phase_results",
           "stage_counts", "stage_start", "entry_counts",
           "NONLINEAR_ALU_OPS", "allgather_recv_bits", "noc_cycles", "gather_cycles",
           "gather_latency", "sync_cycles", "BARRIER_ROUND_CYCLES", "GATHER_ROUND_CYCLES"]

#: One exp/rcp/rsqrt lane op costs this many FP16 ALU ops (range reduction + polynomial).
NONLINEAR_ALU_OPS = 4.0
# 0-d arrays for np.where's constant branches: a Python scalar costs it ~2 us of dtype
# resolution per call (same dtypes result).
_F0, _K2, _K3 = np.array(0.0), np.array(2), np.array(3)


@dataclass(frozen=True)
class Entries:
    """The distinct (design, tile class, group size) combinations of a batch.

    Op costs depend on a group only through its tile class and size, so they are computed
    once per entry (``[E, U]``) and gathered to groups. ``of_group[d, g]`` is the entry of
    group g of design d.
    """

    design: np.ndarray     # [E]
    n: np.ndarray          # [E, 1] tiles in the group
    tile: TileArrays       # each [E, 1]
    of_group: np.ndarray   # [D, G]
    flits_per_vec: np.ndarray  # [E, 1] packet flits carrying one vector register
    w_off: np.ndarray      # [E, 1] bool
    bw_cycle: np.ndarray   # [E, 1] off-chip bytes per cycle of the design
    wmem_rom: np.ndarray   # [E, 1] bool


@dataclass(frozen=True)
class PhaseResult:
    """One phase for D designs (arrays ``[D]``)."""

    tokens_per_s: np.ndarray
    latency_s: np.ndarray          # one execution of the phase through all stages
    energy_pj: np.ndarray          # dynamic energy of one execution
    power_mw: np.ndarray           # dynamic + clock + leakage at this throughput
    bound: np.ndarray              # index into BOUNDS
    energy_breakdown_pj: dict[str, np.ndarray]
    offchip_bytes_per_s: np.ndarray
    group_cycles: np.ndarray       # [D, G]
    #: [D, G, U] ops of each signature on each group, and the cycles one of them takes there
    #: (max of compute, NoC and off-chip terms; 0 on padding groups): the report's latency
    #: by op kind.
    op_counts: np.ndarray | None = None
    op_busy_cycles: np.ndarray | None = None


#: Cycles of a barrier round besides the token's flight (HOP_CYCLES per router passed,
#: then its flits): the NI takes the tx FIFO head the cycle after the ``vsend`` and sends
#: the header the cycle after that; the ``vrecv`` issues the cycle after the NI wrote the
#: vector; the next round's ``vsend`` follows it on the same VNET unit.
BARRIER_ROUND_CYCLES = 3
#: Cycles of an all-gather step besides the last vector's flight: the pointer ``li``s
#: (2) and the first ``vld`` (load latency, 2) before the first ``vsend``, the NI taking
#: the tx FIFO head (1) and the ``vrecv`` after the FIFO write (1), then its ``vst``
#: (``sim/compiler/multitile.py``).
GATHER_ROUND_CYCLES = 7


def allgather_recv_bits(act_in_bytes, n_tiles):
    """Bits each tile of a group of ``n_tiles`` receives when a matmul's input (held split
    over the group) is all-gathered: the other tiles' shares."""
    n = np.asarray(n_tiles, float)
    return np.asarray(act_in_bytes, float) * 8 * (n - 1) / np.maximum(n, 1)


def noc_cycles(recv_bits, net_bits, vlen, flits_per_vec):
    """Cycles a tile's network port needs for the vectors it receives (one flit a cycle)."""
    return (recv_bits + net_bits) / vlen * flits_per_vec


def gather_cycles(recv_bits, vlen, flits_per_vec):
    """Cycles of an all-gather per tile beyond its rounds' latencies: every received
    vector is matched by one sent, and a network interface injects a packet every
    ``flits + 1`` cycles (an idle cycle between packets). The exchange precedes the
    GEMM: the ISA's receive FIFO pops the oldest vector, so a tile cannot consume
    vectors from several senders inside its reduction loop in a fixed order."""
    return np.asarray(recv_bits, float) / vlen * (flits_per_vec + 1)


def _flight(hops, flits_per_vec):
    """Head flit through ``ceil(hops) + 1`` routers, then the rest of the packet."""
    return C.HOP_CYCLES * (np.ceil(hops) + 1) + flits_per_vec


def gather_latency(n_tiles, flits_per_vec):
    """The steps of a ring all-gather over ``n_tiles`` (``n - 1``; each tile hears from
    its ring predecessor only, so received vectors land in known places): each adds one
    vector's flight to the next tile of the ring, a mesh neighbour."""
    n = np.asarray(n_tiles, float)
    return np.where(n > 1, (n - 1) * (_flight(1, flits_per_vec) + GATHER_ROUND_CYCLES), _F0)


def sync_cycles(n_tiles, hops, flits_per_vec):
    """The group barrier after each op: a dissemination barrier, ``ceil(log2 n)`` rounds
    of one token vector each over the mean intra-group distance."""
    n = np.asarray(n_tiles, float)
    rounds = np.ceil(np.log2(np.maximum(n, 1)))
    return np.where(n > 1, rounds * (_flight(hops, flits_per_vec) + BARRIER_ROUND_CYCLES), _F0)


def stage_counts(cum: np.ndarray, stage_end: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Per-stage totals of a cumulative table over name positions (``[D, G, ...]``);
    ``start`` (:func:`stage_start`) when the caller has it."""
    if start is None:
        start = stage_start(stage_end)
    return cum[stage_end] - cum[start]


def stage_start(stage_end: np.ndarray) -> np.ndarray:
    """The first name position of every stage (``[D, G]``)."""
    return np.concatenate([np.zeros_like(stage_end[:, :1]), stage_end[:, :-1]], axis=1)


def entry_counts(counts: np.ndarray, of_group: np.ndarray, e_n: int) -> np.ndarray:
    """Sum ``[D, G, U]`` op counts over the groups of each entry -> ``[E, U]``."""
    # One bincount over (entry, op) bins; each bin still sums its groups in (d, g) order.
    u_n = counts.shape[-1]
    idx = of_group.reshape(-1, 1) * u_n + np.arange(u_n)
    return np.bincount(idx.ravel(), weights=counts.reshape(-1), minlength=e_n * u_n).reshape(e_n, u_n)


@dataclass(frozen=True)
class OpTerms:
    """What one op costs on one tile of each entry, for every phase's ops (``[E, U]``,
    the columns of ``WorkloadTables.plan``): phases only sum these over their groups."""

    busy: np.ndarray           # cycles: max of compute (+ all-gather), NoC and off-chip terms
    code: np.ndarray           # the limiting term (index into BOUNDS)
    off_bytes: np.ndarray      # off-chip bytes
    is_mm: np.ndarray          # [U] 1.0 for matmuls
    energy: np.ndarray         # [4, E, U] compute, sram, control pJ; NoC bits x hops


def op_terms(u: Mapping[str, np.ndarray], cost: OpCost, ent: Entries, kv_off: np.ndarray,
             node: TechNode, edge_hops: np.ndarray) -> OpTerms:
    """:class:`OpTerms` of the ops ``u`` (``WorkloadTables.u``) with kernel costs ``cost``;
    ``kv_off`` (``[E, 1]``) says which entries' designs keep the KV cache off chip."""
    def op(a: np.ndarray) -> np.ndarray:
        return a[None, :]

    nf = ent.n.astype(float)
    is_mm = op(u["is_mm"])
    # Operands each tile receives: all-gathered matmul inputs + streamed weights/KV.
    recv_bits = np.where(is_mm, allgather_recv_bits(op(u["act_in_bytes"]), nf), _F0)
    # All-gathered inputs before the GEMM (gather_cycles); streamed operands are popped
    # by the GEMM loop itself, so their network time overlaps its compute.
    gather = gather_cycles(recv_bits, ent.tile.vlen, ent.flits_per_vec)
    noc = noc_cycles(0.0, cost.net_bits, ent.tile.vlen, ent.flits_per_vec)
    regroup = op(u["regroup"])            # streamed operands re-read per group of A rows
    off_bytes = (np.where(ent.w_off & is_mm, op(u["weight_read_bytes"]) * regroup, _F0)
                 + np.where(kv_off, op(u["kv_read_bytes"]) * regroup
                            + op(u["kv_write_bytes"]), _F0))
    off = off_bytes / np.maximum(ent.bw_cycle, 1e-12)
    compute = cost.cycles.astype(float) + gather
    busy = np.maximum(np.maximum(compute, noc), off)                      # [E, U]
    code = np.where(off >= np.maximum(compute, noc), _K3,
                    np.where((noc > compute) | (gather > cost.cycles), _K2, cost.bound)).astype(np.int64)
    mac_pj = np.where(op(u["int8"]), node.int8_mac_pj, node.fp16_mac_pj)
    wmem_pj = np.where(ent.wmem_rom, node.rom_read_pj_per_bit, node.sram_read_pj_per_bit)
    sram_pj_bit = 0.5 * (node.sram_read_pj_per_bit + node.sram_write_pj_per_bit)
    # Clock-gated vector registers/pipelines: clock + data energy per bit written.
    reg_bits = cost.mac_lane_ops * 32 + (cost.valu_lane_ops + cost.nl_lane_ops) * 16 + cost.dmem_bits
    energy = np.empty((4,) + busy.shape)
    energy[0] = (cost.mac_lane_ops * mac_pj
                 + (cost.valu_lane_ops + NONLINEAR_ALU_OPS * cost.nl_lane_ops) * node.fp16_alu_pj)
    energy[1] = (cost.dmem_bits * sram_pj_bit + cost.wmem_bits * wmem_pj
                 + cost.instrs * 32 * node.sram_read_pj_per_bit)
    energy[2] = cost.instrs * node.instr_overhead_pj + reg_bits * 2 * node.flop_clock_fj * 1e-3
    # All-gathers forward operands tile to tile (one hop per received bit); streamed
    # operands cross the mesh from the edge.
    energy[3] = recv_bits + cost.net_bits * edge_hops[ent.design][:, None]
    return OpTerms(busy=busy, code=code, off_bytes=off_bytes, is_mm=u["is_mm"].astype(float),
                   energy=energy)


def _code_totals(values: np.ndarray, code: np.ndarray, row: np.ndarray, d_n: int) -> np.ndarray:
    """``[d_n, 4]``: ``values`` (``[R, U]``) summed by design ``row`` (``[R]``) and code."""
    idx = row[:, None] * 4 + code
    return np.bincount(idx.ravel(), weights=values.ravel(), minlength=4 * d_n).reshape(d_n, 4)


@dataclass(frozen=True)
class Groups:
    """Phase-independent terms of every group (``[D, G]``; ``bw_cycle`` ``[D]``)."""

    start: np.ndarray          # first name position of the stage
    sync: np.ndarray           # cycles of the barrier after each op
    gather: np.ndarray         # ring all-gather latency before each matmul
    dist: np.ndarray           # hops from the previous stage's centroid
    x_cycles: np.ndarray       # cycles per bit of activations entering the stage
    bw_cycle: np.ndarray       # off-chip bytes per cycle of the design


def group_terms(ent: Entries, start: np.ndarray, g_row: np.ndarray, g_col: np.ndarray,
                g_tiles: np.ndarray, g_hops: np.ndarray) -> Groups:
    d_n, g_n = g_tiles.shape
    flits_g = ent.flits_per_vec[ent.of_group, 0]
    prev = np.maximum(np.arange(g_n) - 1, 0)
    bw_d = np.zeros(d_n)
    bw_d[ent.design] = ent.bw_cycle[:, 0]
    return Groups(
        start=start,
        sync=sync_cycles(g_tiles, g_hops, flits_g), gather=gather_latency(g_tiles, flits_g),
        dist=np.abs(g_row - g_row[:, prev]) + np.abs(g_col - g_col[:, prev]),
        x_cycles=flits_g / (np.maximum(g_tiles, 1) * ent.tile.vlen[ent.of_group, 0]),
        bw_cycle=bw_d)


def phase_results(tables: WorkloadTables, terms: OpTerms, ent: Entries, grp: Groups,
                  counts: np.ndarray, count_e: np.ndarray, busy_dgu: np.ndarray,
                  f_hz: np.ndarray, dyn: np.ndarray, hop_pj_bit: np.ndarray,
                  mem_pj_bit: np.ndarray, static_mw: np.ndarray) -> dict[str, PhaseResult]:
    """Timing and energy of every phase of ``tables`` for every design, phases as a last
    axis (one pass for all of them; ``tables.phase_stack`` maps op columns to phases).

    ``counts`` (``[D, G, U]``) and ``count_e`` (``[E, U]``) are the op counts per group and
    per entry (:func:`stage_counts`, :func:`entry_counts`) over every phase's columns,
    ``busy_dgu`` ``terms.busy`` gathered to groups.
    """
    d_n, p_n = len(grp.bw_cycle), len(tables.phases)
    ps = tables.phase_stack
    of_phase = ps["onehot"]                                               # [U, P]

    # Stage totals: ops of each group are a contiguous range of the workload order. Sums
    # over the (short) op axis are BLAS products: numpy reduces a 10-40 element axis slowly.
    busy_g = (counts * busy_dgu) @ of_phase                               # [D, G, P]
    ops_in_group = counts @ of_phase
    mm_in_group = counts @ ps["onehot_mm"]
    # Activations crossing into a stage from the one before (skip connections are
    # forwarded stage to stage); the receiving tiles each take their share.
    into = np.where((ops_in_group > 0) & (grp.start > 0)[..., None], ps["cut_bits"][grp.start], _F0)
    x_g = np.where(into > 0, into * grp.x_cycles[..., None] + (grp.dist * C.HOP_CYCLES)[..., None], _F0)
    group_cycles = (busy_g + grp.sync[..., None] * ops_in_group + grp.gather[..., None] * mm_in_group
                    + x_g)

    # Throughput and the limiting term. Single-batch phases (decode, encode) take every
    # stage in turn; prefill is pipelined (period = the slowest stage).
    step = group_cycles.sum(1)                                            # [D, P]
    off_d = _by_design(((count_e * terms.off_bytes) @ of_phase)[None], ent.design, d_n)[0]
    off_floor = off_d / np.maximum(grp.bw_cycle, 1e-12)[:, None]
    idx = (ent.design[:, None] * p_n + ps["phase_of"]) * 4 + terms.code
    per_code = np.bincount(idx.ravel(), weights=(count_e * terms.busy).ravel(),
                           minlength=d_n * p_n * 4).reshape(d_n, p_n, 4)
    bound = np.argmax(per_code, axis=2)
    period = step.copy()
    if "prefill" in tables.phases:
        p = ps["index"]["prefill"]
        cols = tables.phase_cols["prefill"]
        gc = group_cycles[:, :, p]
        rows_ix = np.arange(d_n)
        worst = np.argmax(gc, axis=1)
        e_w = ent.of_group[rows_ix, worst]
        pc = _code_totals(counts[rows_ix, worst, cols] * terms.busy[e_w, cols],
                          terms.code[e_w, cols], rows_ix, d_n)
        bound[:, p] = np.where(off_floor[:, p] >= gc.max(1), _K3, np.argmax(pc, axis=1))
        period[:, p] = np.maximum(gc.max(1), off_floor[:, p])
    period = np.maximum(period, 1.0)
    tokens_per_s = ps["tokens"] * f_hz[:, None] / period

    # Energy of one execution (pJ), per entry then per design: [4, D, P].
    per_entry = ((count_e * ent.n) * terms.energy) @ of_phase             # [4, E, P]
    per_d = _by_design(per_entry, ent.design, d_n)
    noc = (per_d[3] + (into * np.maximum(grp.dist, 1.0)[..., None]).sum(1)) * hop_pj_bit[:, None]
    parts = {"compute": per_d[0] * dyn[:, None], "sram": per_d[1] * dyn[:, None],
             "control": per_d[2] * dyn[:, None], "noc": noc * dyn[:, None],
             "offchip": off_d * 8 * mem_pj_bit[:, None]}
    energy = sum(parts.values())
    rate = f_hz[:, None] / period
    power_mw = energy * 1e-12 * rate * 1e3 + static_mw[:, None]
    latency_s = np.maximum(step, 1.0) / f_hz[:, None]
    return {name: PhaseResult(
        tokens_per_s=tokens_per_s[:, p], latency_s=latency_s[:, p], energy_pj=energy[:, p],
        power_mw=power_mw[:, p], bound=bound[:, p],
        energy_breakdown_pj={k: v[:, p] for k, v in parts.items()},
        offchip_bytes_per_s=off_d[:, p] * rate[:, p], group_cycles=group_cycles[:, :, p],
        op_counts=counts[..., tables.phase_cols[name]], op_busy_cycles=busy_dgu[..., tables.phase_cols[name]])
        for p, name in enumerate(tables.phases)}


def _by_design(values: np.ndarray, design: np.ndarray, d_n: int) -> np.ndarray:
    """``[K, E, P]`` entry values summed per design -> ``[K, D, P]`` (in entry order)."""
    k_n, e_n, p_n = values.shape
    idx = (np.arange(k_n)[:, None, None] * d_n + design[None, :, None]) * p_n + np.arange(p_n)
    return np.bincount(idx.ravel(), weights=values.ravel(),
                       minlength=k_n * d_n * p_n).reshape(k_n, d_n, p_n)
