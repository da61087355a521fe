"""Per-op kernel structure and cycle counts on one tile (vectorised).

Each op kind runs as a kernel whose innermost loop body is straight-line code made of
*blocks* (one block = the instructions for one vector of ``L`` lanes of work). The
kernel compiler (``sim/compiler``) emits exactly these loop nests; the model counts the
body's instructions per functional unit and applies the contract's issue rule
(``docs/tile_contract.md`` §5):

    body(u) = max(u*vmac, u*vlsu, u*valu, u*vnet,
                  ceil(u*vector / vector_issue), ceil(LOOP_SCALARS / scalar_issue),
                  ceil((u*block_instrs + LOOP_SCALARS) / issue_width))
              + branch_penalty

where ``u`` blocks are unrolled per loop iteration (as many as a quarter of IMEM holds).
All functions broadcast: tile arrays shaped ``[D, G, 1]`` against op arrays ``[1, 1, U]``.

Kernels (L = lanes of the op's dtype, A = accumulators, R = rows in flight <= A):

* GEMM-like ops (``matmul``, ``attn_qk``, ``attn_av``): output columns are split over
  tiles in chunks of L; rows are processed R at a time (one accumulator each). The B
  operand (weights or K/V) comes from WMEM, DMEM or the network:
  - WMEM, R == 1 (GEMV): block = ``vld x`` + L x ``vmacw`` (WMEM row streamed into the MAC).
  - WMEM, R > 1: block = R x ``vld x_r`` + L x (``vldw w`` + R x ``vmacx``).
  - DMEM (K/V cache, or activations): block = R x ``vld`` + L x (``vld b`` + R x ``vmacx``).
  - network (weights/KV streamed from off chip): block = R x ``vld`` + L x (``vrecv b`` +
    R x ``vmacx``).
  Per (chunk, row group) epilogue: ``wset`` + R ``vzero`` + R (``vcvt`` + ``vst``) + pipeline drain.
* Element-wise ops: software-pipelined passes over blocks of L elements under the
  schedules of :mod:`explorer.ppa.ewpass` (shared with the compiler); row-wise ops
  (softmax, norms, embed) chain their passes through per-row reductions
  (:mod:`explorer.ppa.ewcost`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from .. import contract as C
from ..workloads.graph import OP_KINDS
from .ewcost import EwPlan, ew_cost, ew_plan
from .ewpass import ADDR_WINDOW_BYTES, KERNEL_IMEM_FRACTION, unroll_factor
from .kinds import KIND_INDEX

__all__ = ["TileArrays", "OpCost", "op_cost", "KernelPlan", "plan_kernels", "LOOP_SCALARS",
           "KERNEL_IMEM_FRACTION", "ADDR_WINDOW_BYTES", "unroll_factor", "B_WMEM", "B_DMEM", "B_NET"]

#: Scalar instructions closing every loop iteration: pointer bump, counter bump, branch.
LOOP_SCALARS = 3
#: Where the B operand of a GEMM-like op comes from.
B_WMEM, B_DMEM, B_NET = 0, 1, 2
# 0-d arrays for np.where's constant branches: a Python scalar costs it ~2 us of dtype
# resolution per call, which dominates a single design's evaluation (same dtypes result).
_K0, _K1, _K2 = np.array(0), np.array(1), np.array(2)
_WMEM, _DMEM, _NET = np.array(B_WMEM), np.array(B_DMEM), np.array(B_NET)

@dataclass(frozen=True)
class TileArrays:
    """Tile-class parameters as float columns (``[E, 1]``) plus the contract's issue rates."""

    vlen: np.ndarray
    fetch: np.ndarray
    stations: np.ndarray
    xdp: np.ndarray
    vdp: np.ndarray
    xr_wp: np.ndarray
    vr_wp: np.ndarray
    imem_kib: np.ndarray

    @classmethod
    def of(cls, **params: np.ndarray) -> TileArrays:
        return cls(**{k: np.asarray(v, float) for k, v in params.items()})

    # Cached: the GEMM and element-wise kernels both read the rates.
    @cached_property
    def issue_width(self) -> np.ndarray:
        return C.issue_width(self.fetch, self.stations, self.xdp, self.vdp)

    @cached_property
    def vector_issue(self) -> np.ndarray:
        return C.vector_issue_per_cycle(self.fetch, self.stations, self.xdp, self.vdp)

    @cached_property
    def scalar_issue(self) -> np.ndarray:
        return C.scalar_issue_per_cycle(self.fetch, self.stations, self.xdp, self.vdp, self.xr_wp)


@dataclass(frozen=True)
class OpCost:
    """Per-tile cost of one op (arrays broadcast to ``[D, G, U]``)."""

    cycles: np.ndarray          # compute-side cycles on one tile (loop bodies + epilogues)
    bound: np.ndarray           # 0 compute (VMAC/VALU/issue), 1 scratchpad (VLSU), 2 network (VNET)
    instrs: np.ndarray          # instructions executed on one tile
    mac_lane_ops: np.ndarray    # VMAC instructions x lanes (energy: MAC per lane)
    valu_lane_ops: np.ndarray   # VALU instructions x lanes (plain element-wise)
    nl_lane_ops: np.ndarray     # VALU non-linear (exp/rcp/rsqrt) x lanes
    dmem_bits: np.ndarray       # DMEM bits read + written
    wmem_bits: np.ndarray       # WMEM bits read
    net_bits: np.ndarray        # bits received through vrecv

    def cols(self, sl: slice) -> OpCost:
        """The ops ``sl`` (columns) of every array."""
        return OpCost(*(getattr(self, f.name)[:, sl] for f in fields(self)))


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Float arithmetic: exact for the integer sizes here (< 2**40) and much faster than
    # numpy's int64 floor division.
    return np.ceil(a / np.maximum(b, 1))


def _loop(t: TileArrays, blocks: np.ndarray, vmac: np.ndarray, vlsu: np.ndarray,
          vnet: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cycles, dominant-unit code and instructions of a loop over ``blocks`` blocks (GEMM
    bodies: no VALU ops)."""
    vec = vmac + vlsu + vnet
    iw, vip = t.issue_width, t.vector_issue
    loop_issue = np.ceil(LOOP_SCALARS / t.scalar_issue)
    budget = t.imem_kib * (1024 / 4 * KERNEL_IMEM_FRACTION)
    u = np.minimum(np.maximum(np.floor(budget / np.maximum(vec, 1)), 1), np.maximum(blocks, 1))
    full = np.floor(blocks / u)
    rem = blocks - full * u
    # The full iterations' body (k = u) and the remainder's (k = rem) as one stacked array.
    k = np.array((u, rem))                     # u already has the shape of blocks and vec
    # The busiest unit per block times the blocks: k >= 0 and all counts are integers, so
    # this is max(k * vmac, k * vlsu, k * vnet) exactly, and unit ties are ties per block.
    vmax = np.maximum(np.maximum(vmac, vlsu), vnet)
    unit_max, kvec = k * vmax, k * vec
    issue = np.maximum(np.maximum(np.ceil(kvec / vip), loop_issue), np.ceil((kvec + LOOP_SCALARS) / iw))
    c = (np.maximum(unit_max, issue) + C.BRANCH_PENALTY_CYCLES) * (k > 0)
    # VMAC is compute; VLSU scratchpad; VNET network; issue-bound is compute (ties go to
    # the first of VMAC, VLSU, VNET). The full iterations' unit decides (k = u >= 1).
    code = np.where((issue[0] >= unit_max[0]) | (vmac == vmax), _K0,
                    np.where(vlsu == vmax, _K1, _K2))
    cycles = full * c[0] + c[1]
    instrs = blocks * vec + (full + (rem > 0)) * LOOP_SCALARS
    return cycles, code, instrs


def _gemm_part(t: TileArrays, r: np.ndarray, blocks: np.ndarray, lanes: np.ndarray,
               src: np.ndarray) -> tuple:
    """One (column chunk, row group of ``r`` rows) of a GEMM: cycles and activity."""
    gemv_w = (src == B_WMEM) & (r == 1)
    vmac = np.where(gemv_w, lanes, r * lanes)
    vlsu = np.where(gemv_w, _K1, r + np.where(src == B_NET, _K0, lanes))
    vnet = np.where(src == B_NET, lanes, _K0)
    cyc, code, ins = _loop(t, blocks, vmac, vlsu, vnet)
    # Epilogue: wset, r x vzero, pipeline drain, r x (vcvt, vst).
    epi_instrs = 1 + 3 * r
    cycles = np.where(r > 0, cyc + epi_instrs + C.MAC_LATENCY + C.LOAD_LATENCY, _K0)
    instrs = np.where(r > 0, ins + epi_instrs, _K0)
    mac = blocks * vmac
    b_rows = np.where(r > 0, blocks * lanes, _K0)                  # B-operand vectors read
    dmem_rows = np.where(r > 0, blocks * np.where(gemv_w, _K1, r)
                         + np.where(src == B_DMEM, b_rows, _K0) + r, _K0)
    return cycles, code, instrs, mac, dmem_rows, b_rows


def _gemm(t: TileArrays, p: KernelPlan, lanes: np.ndarray, src: np.ndarray,
          n_tiles: np.ndarray) -> tuple:
    """GEMM-like ops [rows x red] @ [red x cols], column chunks of L split over the tiles.

    Rows go A at a time (one accumulator each): ``rows // A`` full groups and one group
    of ``rows % A`` rows (a part with no rows costs nothing; it is skipped when no op has it).
    """
    split = np.where(p.g_attn, np.maximum(np.floor(n_tiles / p.g_gemms), 1), n_tiles)
    chunks = _ceil_div(_ceil_div(p.g_cols, lanes), split)         # column chunks per tile
    blocks = _ceil_div(p.g_red, lanes)
    # The full row groups (r = A, ``g_full`` of them) and the last one (r = ``g_rem``, no
    # cost when 0) as one stacked [2, E, U] evaluation.
    part = _gemm_part(t, p.g_r, blocks, lanes, src)
    cycles, instrs, mac, dmem_rows, b_rows = (
        chunks * (p.g_full * part[j][0] + part[j][1]) for j in (0, 2, 3, 4, 5))
    # The limiting unit is that of the full row groups when there are any.
    code = np.where(p.g_full > 0, part[1][0], part[1][1])
    wmem_rows = np.where(src == B_WMEM, b_rows, _K0)
    net_rows = np.where(src == B_NET, b_rows, _K0)
    return cycles, code, instrs, mac, dmem_rows, wmem_rows, net_rows


def _elementwise(t: TileArrays, p: KernelPlan, lanes: np.ndarray, n_tiles: np.ndarray) -> tuple:
    """Element-wise/row-wise ops: ``ewcost.ew_cost`` (one formula for every kind)."""
    e = p.w_plan
    per_tile = _ceil_div(p.w_elems, n_tiles)
    row_len = np.maximum(np.where(e.rowwise, p.w_n, per_tile), 1)
    rows = np.where(e.embed, _ceil_div(p.w_rows, n_tiles),
                    np.where(e.rowwise, _ceil_div(per_tile, row_len), _K1))
    cycles, instrs, (lsu, alu, mac, nlo) = ew_cost(t, e, rows, row_len, lanes)
    code = np.where(lsu >= np.maximum(alu + nlo, mac), _K1, _K0)
    return cycles, code, instrs, mac, alu, nlo, lsu


_GEMM_IDX = [KIND_INDEX["matmul"], KIND_INDEX["attn_qk"], KIND_INDEX["attn_av"]]


@dataclass(frozen=True)
class KernelPlan:
    """The op-only part of the kernel model for a fixed set of U ops (``[1, U']`` arrays).

    ``g_*`` describe the GEMM-like ops (columns ``gi``), ``w_*`` the element-wise ones
    (columns ``wi``). Built once per workload by :func:`plan_kernels`.
    """

    u: int
    int8: np.ndarray
    is_mm: np.ndarray
    gi: np.ndarray
    g_is_mm: np.ndarray
    g_lane_scale: np.ndarray   # lanes per vlen bit: 1/8 (int8) or 1/16 (fp16)
    g_lane_bits: np.ndarray
    w_lane_scale: np.ndarray
    g_attn: np.ndarray
    g_gemms: np.ndarray        # independent GEMMs (attention: sequences x KV heads)
    g_rows: np.ndarray
    g_red: np.ndarray
    g_cols: np.ndarray
    g_full: np.ndarray
    g_rem: np.ndarray
    g_r: np.ndarray            # [2, 1, U']: rows of a full row group (A) and of the last
    wi: np.ndarray
    perm: np.ndarray           # op order of the columns [gi, wi]
    w_n: np.ndarray
    w_elems: np.ndarray
    w_kind: np.ndarray         # op kind index (ewpass.PASSES)
    w_rows: np.ndarray         # embed: rows gathered (batch x m)
    w_plan: EwPlan             # coefficients of the element-wise cost formula


def plan_kernels(kind: np.ndarray, int8: np.ndarray, batch: np.ndarray, m: np.ndarray,
                 k: np.ndarray, n: np.ndarray, elems: np.ndarray, share: np.ndarray) -> KernelPlan:
    """Precompute the op-only quantities of :func:`op_cost` (1-D op arrays in)."""
    gem = np.isin(kind, _GEMM_IDX)
    gi, wi = np.flatnonzero(gem), np.flatnonzero(~gem)
    kd, b_, m_, sh = kind[gi], batch[gi], m[gi], share[gi]
    attn = kd != KIND_INDEX["matmul"]
    # matmul: rows = batch*m tokens. Attention: one GEMM per (sequence, KV head) with the
    # `share` query heads of the group as rows; those GEMMs are spread over tiles.
    rows = np.maximum(np.where(attn, sh * m_, b_ * m_), 1)
    full, rem = rows // C.ACCS, rows % C.ACCS
    kw = kind[wi]
    lane_scale = np.where(int8, 1 / 8, 1 / 16)

    def row(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return (a if a.dtype == bool else a.astype(float))[None, :]

    return KernelPlan(
        u=len(kind), int8=row(int8), is_mm=row(kind == KIND_INDEX["matmul"]), gi=gi,
        g_is_mm=row(kind[gi] == KIND_INDEX["matmul"]), g_lane_scale=row(lane_scale[gi]),
        g_lane_bits=row(np.where(int8[gi], 8, 16)), w_lane_scale=row(lane_scale[wi]),
        g_attn=row(attn), g_gemms=row(np.where(attn, np.maximum(b_ // np.maximum(sh, 1), 1), 1)),
        g_rows=row(rows), g_red=row(np.maximum(k[gi], 1)), g_cols=row(np.maximum(n[gi], 1)),
        g_full=row(full), g_rem=row(rem), g_r=np.stack([row(np.full_like(rem, C.ACCS)), row(rem)]),
        wi=wi, perm=np.argsort(np.concatenate([gi, wi])), w_n=row(n[wi]), w_elems=row(elems[wi]),
        w_kind=row(kw).astype(np.int64), w_rows=row(batch[wi] * m[wi]),
        w_plan=ew_plan([OP_KINDS[k] for k in kw]))


def op_cost(t: TileArrays, p: KernelPlan, n_tiles: np.ndarray, weights_offchip: np.ndarray,
            kv_offchip: np.ndarray) -> OpCost:
    """Per-tile cycles and activity of each op on each group entry (module docstring).

    Tile arrays and ``n_tiles`` are ``[E, 1]``; ``weights_offchip`` / ``kv_offchip``
    (``[E, 1]``) select the network as the B-operand source. Returns ``[E, U]`` arrays.
    """
    # One [field, E, U] array, GEMM-like ops first (fields 0-6), then element-wise ones
    # (fields 0-4, 7, 8); one take puts the columns in op order (cheaper than scatters).
    out = np.zeros((9, t.vlen.shape[0], p.u))
    gi, wi, ng = p.gi, p.wi, p.gi.size
    if gi.size:
        # vlen / 8 or vlen / 16 (C.lanes_int8 / lanes_fp16), exactly: a power-of-two scale.
        lanes = t.vlen * p.g_lane_scale
        src = np.where(p.g_is_mm, np.where(weights_offchip, _NET, _WMEM),
                       np.where(kv_offchip, _NET, _DMEM))
        cycles, code, instrs, mac, dmem, wmem, net = _gemm(t, p, lanes, src, n_tiles)
        mult = np.where(p.g_attn, _ceil_div(p.g_gemms, n_tiles), _K1)
        bits = lanes * p.g_lane_bits
        for j, v in enumerate((cycles * mult, code, instrs * mult, mac * mult * lanes,
                               dmem * mult * t.vlen, wmem * mult * bits, net * mult * bits)):
            out[j, :, :ng] = v
    if wi.size:
        lanes = t.vlen * p.w_lane_scale
        cycles, code, instrs, mac, valu, nl, dmem = _elementwise(t, p, lanes, n_tiles)
        for j, v in ((0, cycles), (1, code), (2, instrs), (3, mac * lanes), (4, dmem * t.vlen),
                     (7, valu * lanes), (8, nl * lanes)):
            out[j, :, ng:] = v
    out = np.take(out, p.perm, axis=2)
    return OpCost(cycles=out[0], bound=out[1], instrs=out[2], mac_lane_ops=out[3],
                  valu_lane_ops=out[7], nl_lane_ops=out[8], dmem_bits=out[4], wmem_bits=out[5],
                  net_bits=out[6])
