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
* Element-wise ops: one block per L elements with a fixed mix per kind (table below);
  row-wise ops (softmax, norms) add a per-row reduction epilogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import contract as C
from .tables import KIND_INDEX

__all__ = ["TileArrays", "OpCost", "op_cost", "LOOP_SCALARS", "KERNEL_IMEM_FRACTION",
           "ELEMENTWISE_MIX", "B_WMEM", "B_DMEM", "B_NET"]

#: Scalar instructions closing every loop iteration: pointer bump, counter bump, branch.
LOOP_SCALARS = 3
#: Share of IMEM one kernel's unrolled body may use (the others stay resident).
KERNEL_IMEM_FRACTION = 0.25
#: Where the B operand of a GEMM-like op comes from.
B_WMEM, B_DMEM, B_NET = 0, 1, 2

# Element-wise kernels: per block of L elements (vlsu, valu, vmac, nonlinear-valu) and per
# row epilogue instructions (vred + vmv + scalar math + vrcp/vrsqrt) for row-wise ops.
#   softmax : max pass (vld, vmax); exp pass (vld, vadd.hs, vexp, vst, vmacv sum);
#             scale pass (vld, vmul.hs, vst)
#   rmsnorm : sum-of-squares pass (vld, vmacv); scale pass (vld x, vld w, vmul.hs, vmul, vst)
#   layernorm: mean pass (vld, vmacv); var pass (vld, vadd.hs, vmacv);
#              scale pass (vld x, vld w, vld b, vadd.hs, vmul.hs, vmul, vadd, vst)
#   rope    : vld x, vld x_rot, vld cos, vld sin, vmul, vmul, vadd, vst
#   silu_mul: vld a, vld b, vmul.hs(-1), vexp, vadd.hs(1), vrcp, vmul, vmul, vst
#   gelu    : tanh form as x*sigmoid(2c(x + 0.044715 x^3)): vld, 4 vmul(.hs), vadd,
#             vmul.hs(-1), vexp, vadd.hs(1), vrcp, vmul, vst
#   add     : vld, vld, vadd, vst
#   embed / reshape: vld (or vldw), vst
ELEMENTWISE_MIX: dict[str, tuple[int, int, int, int, int]] = {
    #            vlsu valu vmac  nl  row_epilogue_instrs
    "softmax":   (5, 3, 1, 1, 8),
    "rmsnorm":   (4, 2, 1, 0, 8),
    "layernorm": (7, 5, 2, 0, 12),
    "rope":      (5, 3, 0, 0, 0),
    "silu_mul":  (3, 6, 0, 2, 0),
    "gelu":      (2, 10, 0, 2, 0),
    "add":       (3, 1, 0, 0, 0),
    "embed":     (2, 0, 0, 0, 0),
    "reshape":   (2, 0, 0, 0, 0),
}
_ROWWISE = ("softmax", "rmsnorm", "layernorm")


@dataclass(frozen=True)
class TileArrays:
    """Tile-class parameters of each group, shaped for broadcasting (``[D, G, 1]``)."""

    vlen: np.ndarray
    fetch: np.ndarray
    stations: np.ndarray
    xdp: np.ndarray
    vdp: np.ndarray
    xr_wp: np.ndarray
    vr_wp: np.ndarray
    imem_kib: np.ndarray


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


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -(-a // np.maximum(b, 1))


def _loop(t: TileArrays, blocks: np.ndarray, vmac: np.ndarray, vlsu: np.ndarray,
          valu: np.ndarray, vnet: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cycles, dominant-unit code and instructions of a loop over ``blocks`` blocks."""
    vec = vmac + vlsu + valu + vnet
    iw = C.issue_width(t.fetch, t.stations, t.xdp, t.vdp)
    vip = C.vector_issue_per_cycle(t.fetch, t.stations, t.xdp, t.vdp)
    sip = C.scalar_issue_per_cycle(t.fetch, t.stations, t.xdp, t.vdp, t.xr_wp)
    budget = (t.imem_kib * 1024 // 4) * KERNEL_IMEM_FRACTION
    u = np.clip(budget // np.maximum(vec, 1), 1, np.maximum(blocks, 1)).astype(np.int64)

    def body(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        units = np.stack(np.broadcast_arrays(k * vmac, k * vlsu, k * valu, k * vnet))
        unit_max = units.max(axis=0)
        issue = np.maximum(np.maximum(_ceil_div(k * vec, vip), _ceil_div(LOOP_SCALARS, sip)),
                           _ceil_div(k * vec + LOOP_SCALARS, iw))
        cyc = np.maximum(unit_max, issue) + C.BRANCH_PENALTY_CYCLES
        # VMAC and VALU are compute; VLSU scratchpad; VNET network; issue-bound is compute.
        which = np.argmax(units, axis=0)
        code = np.where(issue >= unit_max, 0, np.choose(which, [0, 1, 0, 2]))
        return np.where(k > 0, cyc, 0), code

    full, rem = blocks // u, blocks % u
    c_full, code = body(u)
    c_rem, _ = body(rem)
    cycles = full * c_full + c_rem
    instrs = blocks * vec + (full + (rem > 0)) * LOOP_SCALARS
    return cycles, code, instrs


def _gemm_part(t: TileArrays, r: np.ndarray, blocks: np.ndarray, lanes: np.ndarray,
               src: np.ndarray) -> tuple:
    """One (column chunk, row group of ``r`` rows) of a GEMM: cycles and activity."""
    gemv_w = (src == B_WMEM) & (r == 1)
    vmac = np.where(gemv_w, lanes, r * lanes)
    vlsu = np.where(gemv_w, 1, r + np.where(src == B_NET, 0, lanes))
    vnet = np.where(src == B_NET, lanes, 0)
    cyc, code, ins = _loop(t, blocks, vmac, vlsu, np.zeros_like(vmac), vnet)
    # Epilogue: wset, r x vzero, pipeline drain, r x (vcvt, vst).
    epi_instrs = 1 + 3 * r
    cycles = np.where(r > 0, cyc + epi_instrs + C.MAC_LATENCY + C.LOAD_LATENCY, 0)
    instrs = np.where(r > 0, ins + epi_instrs, 0)
    mac = blocks * vmac
    b_rows = np.where(r > 0, blocks * lanes, 0)                    # B-operand vectors read
    dmem_rows = np.where(r > 0, blocks * np.where(gemv_w, 1, r)
                         + np.where(src == B_DMEM, b_rows, 0) + r, 0)
    return cycles, code, instrs, mac, dmem_rows, b_rows


def _gemm(t: TileArrays, rows: np.ndarray, red: np.ndarray, cols: np.ndarray,
          lanes: np.ndarray, src: np.ndarray, n_tiles: np.ndarray) -> tuple:
    """GEMM-like op [rows x red] @ [red x cols], column chunks of L split over ``n_tiles``.

    Rows go A at a time (one accumulator each): ``rows // A`` full groups and one group
    of ``rows % A`` rows.
    """
    chunks = _ceil_div(_ceil_div(cols, lanes), n_tiles)           # column chunks per tile
    blocks = _ceil_div(red, lanes)
    full = rows // C.ACCS
    f = _gemm_part(t, np.full_like(rows, C.ACCS), blocks, lanes, src)
    p = _gemm_part(t, rows % C.ACCS, blocks, lanes, src)
    cycles, instrs, mac, dmem_rows, b_rows = (chunks * (full * a + b) for a, b in
                                              zip((f[0], f[2], f[3], f[4], f[5]),
                                                  (p[0], p[2], p[3], p[4], p[5])))
    code = np.where(full > 0, f[1], p[1])
    wmem_rows = np.where(src == B_WMEM, b_rows, 0)
    net_rows = np.where(src == B_NET, b_rows, 0)
    return cycles, code, instrs, mac, dmem_rows, wmem_rows, net_rows


def op_cost(t: TileArrays, kind: np.ndarray, int8: np.ndarray, batch: np.ndarray,
            m: np.ndarray, k: np.ndarray, n: np.ndarray, elems: np.ndarray, share: np.ndarray,
            n_tiles: np.ndarray, weights_offchip: np.ndarray, kv_offchip: np.ndarray) -> OpCost:
    """Per-tile cycles and activity of each op on each group (see the module docstring).

    ``n_tiles`` is the group size (``[D, G, 1]``); ``weights_offchip`` / ``kv_offchip`` are
    per-design booleans (``[D, 1, 1]``) selecting the network as the B-operand source.
    """
    lanes = np.where(int8, C.lanes_int8(t.vlen), C.lanes_fp16(t.vlen))
    is_mm = kind == KIND_INDEX["matmul"]
    is_attn = (kind == KIND_INDEX["attn_qk"]) | (kind == KIND_INDEX["attn_av"])
    # GEMM view. matmul: rows = batch*m tokens. Attention: one GEMM per (sequence, KV head)
    # with the `share` query heads of the group as rows; those GEMMs are spread over tiles.
    gemms = np.where(is_attn, np.maximum(batch // np.maximum(share, 1), 1), 1)
    gemms_per_tile = _ceil_div(gemms, n_tiles)
    tiles_per_gemm = np.maximum(n_tiles // np.maximum(gemms, 1), 1)
    rows = np.where(is_attn, share * m, batch * m)
    src = np.where(is_mm, np.where(weights_offchip, B_NET, B_WMEM),
                   np.where(kv_offchip, B_NET, B_DMEM))
    g = _gemm(t, np.maximum(rows, 1), np.maximum(k, 1), np.maximum(n, 1), lanes, src,
              np.where(is_attn, tiles_per_gemm, n_tiles))
    g_mult = np.where(is_attn, gemms_per_tile, 1)
    gemm_cycles, gemm_code, gemm_instrs = g[0] * g_mult, g[1], g[2] * g_mult
    gemm_mac, gemm_vlsu, gemm_wmem, gemm_net = (x * g_mult for x in g[3:])

    # Element-wise kinds.
    mix = np.zeros((5, len(KIND_INDEX)), np.int64)
    for name, row in ELEMENTWISE_MIX.items():
        mix[:, KIND_INDEX[name]] = row
    vlsu_b, valu_b, vmac_b, nl_b, row_epi = (mix[i][kind] for i in range(5))
    per_tile = _ceil_div(elems, n_tiles)
    rowwise = np.isin(kind, [KIND_INDEX[x] for x in _ROWWISE])
    row_len = np.maximum(np.where(rowwise, n, per_tile), 1)
    rows_tile = np.where(rowwise, _ceil_div(per_tile, row_len), 1)
    blocks = _ceil_div(row_len, lanes)
    ew_cycles, ew_code, ew_instrs = _loop(t, blocks, vmac_b, vlsu_b, valu_b + nl_b,
                                          np.zeros_like(vlsu_b))
    epi = np.where(rowwise, row_epi + C.reduce_latency(t.vlen) + C.VALU_LATENCY, 0)
    ew_cycles = rows_tile * (ew_cycles + epi)
    ew_instrs = rows_tile * (ew_instrs + row_epi)
    ew_blocks = rows_tile * blocks

    gemm_like = is_mm | is_attn
    lane_bits = np.where(int8, 8, 16)
    cycles = np.where(gemm_like, gemm_cycles, ew_cycles)
    return OpCost(
        cycles=cycles,
        bound=np.where(gemm_like, gemm_code, ew_code),
        instrs=np.where(gemm_like, gemm_instrs, ew_instrs),
        mac_lane_ops=np.where(gemm_like, gemm_mac, ew_blocks * vmac_b) * lanes,
        valu_lane_ops=np.where(gemm_like, 0, ew_blocks * valu_b) * lanes,
        nl_lane_ops=np.where(gemm_like, 0, ew_blocks * nl_b) * lanes,
        dmem_bits=np.where(gemm_like, gemm_vlsu, ew_blocks * vlsu_b) * t.vlen,
        wmem_bits=np.where(gemm_like, gemm_wmem * lanes * lane_bits, 0),
        net_bits=np.where(gemm_like, gemm_net * lanes * lane_bits, 0),
    )
