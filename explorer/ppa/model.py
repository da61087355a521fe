"""The analytical PPA model: a batch of designs -> throughput, power, area, energy, bounds.

Pure functions over numpy arrays (DESIGN.md §4). Per op on its tile group the latency is
the max of the compute/scratchpad term (the kernel's loop cycles, ``kernels.py``), the
network term (operands each tile must receive, in packets of ``vlen`` bits) and the
off-chip term (bytes over the memory bandwidth), plus a group barrier. Ops on one group
run in sequence; groups are pipeline stages. Decode and the VLM encode phase push one
batch through all stages (step = sum of the stages); prefill is pipelined over many
prompts (period = the slowest stage). Every assumption is listed in :data:`ASSUMPTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import contract as C
from ..tech.node import RETICLE_MM2, OffchipMemory, TechNode
from .area import CHIP_OVERHEAD_FRACTION, tile_features, tile_flops, tile_logic_um2, tile_sram_um2
from .batch import DesignBatch
from .kernels import TileArrays, op_cost
from .tables import KIND_INDEX, PhaseTable, WorkloadTables

__all__ = ["PhaseResult", "PPAResult", "evaluate", "BOUNDS", "VIOLATIONS", "ASSUMPTIONS",
           "NONLINEAR_ALU_OPS"]

#: Names of the limiting terms, indexed by the bound codes.
BOUNDS = ("compute", "scratchpad", "noc", "offchip")
#: Hard physical/structural checks, as bit flags of PPAResult.violations.
VIOLATIONS = {
    1: "die area above the reticle limit",
    2: "power density above the cooling limit",
    4: "weights do not fit the WMEM of their tile group",
    8: "KV cache does not fit DMEM and there is no off-chip memory",
    16: "activation working set does not fit DMEM",
    32: "clock above the node's fmax at this supply",
    64: "supply voltage outside the node's range",
    128: "kernel code does not fit IMEM",
}
#: One exp/rcp/rsqrt lane op costs this many FP16 ALU ops (range reduction + polynomial).
NONLINEAR_ALU_OPS = 4.0
ASSUMPTIONS = (
    "Throughput: decode and encode push the whole batch through all pipeline stages in turn "
    "(one batch in flight); prefill is pipelined over many prompts (period = slowest stage).",
    "Ops of one group are split evenly over its tiles: GEMMs by output-column chunks of one "
    "vector, attention by (sequence, KV head), element-wise ops by rows/elements.",
    "Matmul inputs are all-gathered to every tile of the group over the NoC in packets of one "
    "vector register; tensors between groups go tile to tile across the centroid distance.",
    "Each op ends with a group barrier of 2 x mean intra-group hops x hop latency.",
    "Off-chip traffic: weights when they live off chip, KV cache when it does not fit DMEM; "
    "a streamed operand is re-read for every group of A=4 rows (one accumulator per row), so "
    "prefill with off-chip weights has an arithmetic intensity of 4 MACs per weight element.",
    "Off-chip bandwidth: min(channels x per-channel GB/s, edge routers x one flit per cycle).",
    "Off-chip power is transfer energy (pJ/bit x bits); DRAM standby/refresh is not included.",
    "Clock power: every flip-flop of every tile is clocked every cycle (no clock gating).",
    "Leakage: logic at logic density x area, SRAM and ROM arrays at SRAM density x area.",
    f"Die area adds {CHIP_OVERHEAD_FRACTION:.0%} for clock/power distribution, DFT and IO ring.",
    f"exp/rcp/rsqrt cost {NONLINEAR_ALU_OPS:g} FP16 ALU operations of energy each.",
)


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


@dataclass(frozen=True)
class PPAResult:
    """PPA of D designs; per-phase details in ``phases``."""

    phases: dict[str, PhaseResult]
    area_mm2: np.ndarray
    area_breakdown_mm2: dict[str, np.ndarray]
    clock_power_mw: np.ndarray
    leakage_mw: np.ndarray
    power_mw: np.ndarray           # the highest phase power (sustained peak)
    peak_flops_per_s: np.ndarray
    offchip_bytes_per_s: np.ndarray  # available off-chip bandwidth
    kv_offchip: np.ndarray
    violations: np.ndarray         # bit flags, see VIOLATIONS
    fmax_mhz: np.ndarray

    @property
    def feasible(self) -> np.ndarray:
        return self.violations == 0

    def reasons(self, i: int) -> list[str]:
        """Human-readable violations of design ``i``."""
        return [msg for bit, msg in VIOLATIONS.items() if int(self.violations[i]) & bit]


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -(-a // np.maximum(b, 1))


def _group_sum(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum ``values[d, i]`` into ``[D, n_groups]`` by ``group[d, i]``."""
    d = group.shape[0]
    flat = (np.arange(d)[:, None] * n_groups + group).ravel()
    w = np.broadcast_to(values, group.shape).ravel()
    return np.bincount(flat, weights=w, minlength=d * n_groups).reshape(d, n_groups)


def _op_counts(group: np.ndarray, uid: np.ndarray, n_groups: int, n_unique: int) -> np.ndarray:
    d = group.shape[0]
    flat = ((np.arange(d)[:, None] * n_groups + group) * n_unique + uid[None, :]).ravel()
    return np.bincount(flat, minlength=d * n_groups * n_unique).reshape(d, n_groups, n_unique)


def evaluate(batch: DesignBatch, tables: WorkloadTables, node: TechNode,
             offchip: Sequence[OffchipMemory]) -> PPAResult:
    """PPA of every design in ``batch`` running the workload ``tables`` at ``node``.

    ``offchip`` lists the off-chip memory records in the order of
    :data:`explorer.design.OFFCHIP_KINDS` (index = ``batch.offchip_kind``).
    """
    d_n, g_n = batch.g_tiles.shape
    f_hz = batch.clock_mhz * 1e6
    vdd = np.where(np.isnan(batch.vdd_v), node.vdd_nom_v, batch.vdd_v)
    dyn = node.dyn_energy_scale(vdd)
    leak_scale = node.leakage_scale(vdd)

    # ---- area ------------------------------------------------------------------------
    feats = tile_features(batch.k_vlen, batch.k_fetch, batch.k_stations, batch.k_xdp,
                          batch.k_vdp, batch.k_xr_wp, batch.k_vr_wp, batch.flit_bits[:, None])
    logic_um2 = tile_logic_um2(feats, node)
    sram_um2, wmem_um2 = tile_sram_um2(batch.k_dmem_kib, batch.k_imem_kib, batch.k_wmem_kib,
                                       batch.k_wmem_rom, node)
    cnt = batch.k_count
    logic_mm2 = (cnt * logic_um2).sum(1) * 1e-6
    sram_mm2 = (cnt * sram_um2).sum(1) * 1e-6
    wmem_mm2 = (cnt * wmem_um2).sum(1) * 1e-6
    has_mem = batch.offchip_kind >= 0
    kind = np.maximum(batch.offchip_kind, 0)
    gbps = np.array([m.gbytes_per_s_per_channel for m in offchip])[kind]
    mem_pj_bit = np.array([m.pj_per_bit for m in offchip])[kind]
    phy_mm2 = np.where(has_mem, batch.channels * np.array([m.phy_area_mm2_per_channel for m in offchip])[kind], 0.0)
    ctrl_mm2 = np.where(has_mem, batch.channels * np.array(
        [m.controller_kgates_per_channel for m in offchip])[kind] * 1e3
        * node.nand2_area_um2 / node.logic_utilization * 1e-6, 0.0)
    core_mm2 = logic_mm2 + sram_mm2 + wmem_mm2 + phy_mm2 + ctrl_mm2
    area_mm2 = core_mm2 * (1 + CHIP_OVERHEAD_FRACTION)
    tiles = np.maximum(batch.n_tiles, 1)
    pitch_mm = np.sqrt((logic_mm2 + sram_mm2 + wmem_mm2) / tiles)
    hop_pj_bit = node.router_pj_per_bit + node.wire_pj_per_bit_mm * pitch_mm  # at nominal Vdd
    offchip_bw = np.where(has_mem, batch.channels * gbps * 1e9, 0.0)          # bytes/s
    edge_routers = np.minimum(2 * (batch.rows + batch.cols), batch.n_tiles)
    edge_bw = edge_routers * batch.flit_bits / 8 * f_hz                        # NoC injection
    bw_cycle = np.minimum(offchip_bw, edge_bw) / f_hz                          # bytes/cycle

    # ---- static power ----------------------------------------------------------------
    flops_tile = tile_flops(feats, gated=False)
    clock_mw = (cnt * flops_tile).sum(1) * node.flop_clock_fj * 1e-15 * f_hz * dyn * 1e3
    leakage_mw = (logic_mm2 * node.logic_leakage_mw_per_mm2
                  + (sram_mm2 + wmem_mm2) * node.sram_leakage_mw_per_mm2) * leak_scale

    # ---- per-group tile parameters [D, G, 1] -------------------------------------------
    def gk(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, batch.g_class, axis=1)[..., None]

    t = TileArrays(vlen=gk(batch.k_vlen), fetch=gk(batch.k_fetch), stations=gk(batch.k_stations),
                   xdp=gk(batch.k_xdp), vdp=gk(batch.k_vdp), xr_wp=gk(batch.k_xr_wp),
                   vr_wp=gk(batch.k_vr_wp), imem_kib=gk(batch.k_imem_kib))
    n = batch.g_tiles[..., None]
    dmem_bytes = gk(batch.k_dmem_kib)[..., 0] * 1024.0
    wmem_bytes = gk(batch.k_wmem_kib)[..., 0] * 1024.0
    active = batch.g_tiles > 0

    # ---- capacities and violations ---------------------------------------------------
    violations = np.zeros(d_n, np.int64)
    violations |= np.where(area_mm2 > RETICLE_MM2, 1, 0)
    fmax = node.fmax_mhz_at(vdd)
    violations |= np.where(batch.clock_mhz > fmax * (1 + 1e-9), 32, 0)
    violations |= np.where((vdd < node.vdd_min_v - 1e-9) | (vdd > node.vdd_max_v + 1e-9), 64, 0)
    w_group = _group_sum(tables.op_weight_bytes[None, :], batch.op_group, g_n)
    w_tile = w_group / np.maximum(batch.g_tiles, 1)
    on_die = ~batch.weights_offchip
    violations |= np.where(on_die & (active & (w_tile > wmem_bytes)).any(1), 4, 0)
    kv_store = np.zeros((d_n, g_n))
    dec = tables.phases.get("decode")
    if dec is not None:
        kv_store = _group_sum(dec.u_kv_read_bytes[dec.op_uid][None, :],
                              batch.op_group[:, dec.op_pos], g_n) / np.maximum(batch.g_tiles, 1)
    work = np.zeros((d_n, g_n))
    for pt in tables.phases.values():
        work = np.maximum(work, _working_set(pt, batch, t, n, g_n))
    kv_fits = ~(active & (kv_store + work > dmem_bytes)).any(1)
    kv_offchip = ~kv_fits & has_mem
    violations |= np.where(~kv_fits & ~has_mem, 8, 0)
    violations |= np.where((active & (work > dmem_bytes)).any(1), 16, 0)
    imem_need = _imem_need(t)[..., 0]
    violations |= np.where((active & (imem_need > gk(batch.k_imem_kib)[..., 0] * 256)).any(1), 128, 0)

    # ---- phases -----------------------------------------------------------------------
    phases: dict[str, PhaseResult] = {}
    for name, pt in tables.phases.items():
        phases[name] = _phase(pt, batch, node, t, n, g_n, f_hz, dyn, hop_pj_bit, bw_cycle,
                              mem_pj_bit, kv_offchip, clock_mw + leakage_mw)
    power_mw = np.max(np.stack([p.power_mw for p in phases.values()]), axis=0)
    violations |= np.where(power_mw * 1e-3 / np.maximum(area_mm2, 1e-9)
                           > _max_power_density(), 2, 0)
    lanes = np.where(_int8_workload(tables), C.lanes_int8(batch.k_vlen), C.lanes_fp16(batch.k_vlen))
    return PPAResult(
        phases=phases, area_mm2=area_mm2,
        area_breakdown_mm2={"logic": logic_mm2, "sram": sram_mm2, "wmem": wmem_mm2,
                            "phy": phy_mm2 + ctrl_mm2,
                            "overhead": core_mm2 * CHIP_OVERHEAD_FRACTION},
        clock_power_mw=clock_mw, leakage_mw=leakage_mw, power_mw=power_mw,
        peak_flops_per_s=(cnt * 2 * lanes).sum(1) * f_hz,
        offchip_bytes_per_s=offchip_bw, kv_offchip=kv_offchip, violations=violations,
        fmax_mhz=fmax,
    )


def _max_power_density() -> float:
    from ..tech import MAX_POWER_DENSITY_W_PER_MM2
    return float(MAX_POWER_DENSITY_W_PER_MM2)


def _int8_workload(tables: WorkloadTables) -> bool:
    return any(bool(pt.u_int8.any()) for pt in tables.phases.values())


def _working_set(pt: PhaseTable, batch: DesignBatch, t: TileArrays, n: np.ndarray,
                 g_n: int) -> np.ndarray:
    """Largest per-tile DMEM working set of the ops on each group (bytes, double-buffered).

    GEMMs hold A rows of input and of their output slice; element-wise ops 4 rows (or 4
    vectors) of their share; everything else streams.
    """
    gemm = ((pt.u_kind == KIND_INDEX["matmul"]) | (pt.u_kind == KIND_INDEX["attn_qk"])
            | (pt.u_kind == KIND_INDEX["attn_av"]))[None, None, :]
    rows = np.minimum(pt.u_batch * pt.u_m, C.ACCS)[None, None, :]
    n_slice = -(-pt.u_n[None, None, :] // np.maximum(n, 1))
    ew = np.minimum(-(-pt.u_elems[None, None, :] // np.maximum(n, 1)),
                    4 * np.maximum(pt.u_n[None, None, :], C.lanes_fp16(t.vlen)))
    per_op = np.where(gemm, 2 * rows * (pt.u_k[None, None, :] + n_slice) * 2, 2 * ew * 2)
    group = batch.op_group[:, pt.op_pos]
    present = _op_counts(group, pt.op_uid, g_n, pt.n_unique) > 0
    return np.where(present, per_op, 0).max(axis=2).astype(float)


def _imem_need(t: TileArrays) -> np.ndarray:
    """Instruction words of the largest non-unrolled kernel body + prologue/epilogue."""
    lanes = C.lanes_fp16(t.vlen)
    return (C.ACCS + lanes * (1 + C.ACCS)) + 32


def _phase(pt: PhaseTable, batch: DesignBatch, node: TechNode, t: TileArrays, n: np.ndarray,
           g_n: int, f_hz: np.ndarray, dyn: np.ndarray, hop_pj_bit: np.ndarray,
           bw_cycle: np.ndarray, mem_pj_bit: np.ndarray, kv_offchip: np.ndarray,
           static_mw: np.ndarray) -> PhaseResult:
    d_n = len(batch)
    u = pt.n_unique
    group = batch.op_group[:, pt.op_pos]                                   # [D, ops]
    counts = _op_counts(group, pt.op_uid, g_n, u)                          # [D, G, U]

    def op(a: np.ndarray) -> np.ndarray:
        return a[None, None, :]

    w_off = batch.weights_offchip[:, None, None]
    kv_off = kv_offchip[:, None, None]
    cost = op_cost(t, op(pt.u_kind), op(pt.u_int8), op(pt.u_batch), op(pt.u_m), op(pt.u_k),
                   op(pt.u_n), op(pt.u_elems), op(pt.u_share), n, w_off, kv_off)
    nf = n.astype(float)
    is_mm = op(pt.u_kind == KIND_INDEX["matmul"])
    # Operands each tile receives: all-gathered matmul inputs + streamed weights/KV.
    recv_bits = np.where(is_mm, op(pt.u_act_in_bytes) * 8 * (nf - 1) / np.maximum(nf, 1), 0.0)
    flits_per_vec = C.packet_flits(t.vlen, batch.flit_bits[:, None, None])
    noc_cycles = (recv_bits + cost.net_bits) / t.vlen * flits_per_vec
    hops = batch.g_hops[..., None]
    sync = np.where(n > 1, 2 * np.ceil(hops) * C.HOP_CYCLES, 0)
    # Streamed B operands are re-read once per group of A rows (one accumulator per row).
    regroup = op(-(-np.where(pt.u_kind == KIND_INDEX["matmul"], pt.u_batch * pt.u_m,
                             pt.u_share * pt.u_m) // C.ACCS))
    off_bytes = (np.where(w_off & is_mm, op(pt.u_weight_read_bytes) * regroup, 0.0)
                 + np.where(kv_off, op(pt.u_kv_read_bytes) * regroup + op(pt.u_kv_write_bytes), 0.0))
    off_cycles = off_bytes / np.maximum(bw_cycle[:, None, None], 1e-12)
    compute = cost.cycles.astype(float)
    op_cycles = np.maximum(np.maximum(compute, noc_cycles), off_cycles) + sync
    code = np.where(off_cycles >= np.maximum(compute, noc_cycles), 3,
                    np.where(noc_cycles > compute, 2, cost.bound))
    weighted = counts * op_cycles                                          # [D, G, U]
    # Tensors crossing groups: the consumer's tiles each take their share.
    src_g = np.take(group, pt.edge_src, axis=1)
    dst_g = np.take(group, pt.edge_dst, axis=1)
    cross = src_g != dst_g
    rows_ix = np.arange(d_n)[:, None]
    dist = (np.abs(batch.g_row[rows_ix, src_g] - batch.g_row[rows_ix, dst_g])
            + np.abs(batch.g_col[rows_ix, src_g] - batch.g_col[rows_ix, dst_g]))
    xbits = np.where(cross, pt.edge_bytes[None, :] * 8, 0.0)
    n_dst = np.maximum(np.take_along_axis(batch.g_tiles, dst_g, axis=1), 1)
    vlen_dst = np.take_along_axis(t.vlen[..., 0], dst_g, axis=1)
    xcyc = np.where(cross, xbits / n_dst / vlen_dst
                    * C.packet_flits(vlen_dst, batch.flit_bits[:, None])
                    + dist * C.HOP_CYCLES, 0.0)
    group_cycles = weighted.sum(2) + _group_sum(xcyc, dst_g, g_n)
    bound_cycles = np.stack([(weighted * (code == c)).sum((1, 2)) for c in range(4)], 1)

    # Throughput.
    step = group_cycles.sum(1)
    off_total = (counts * off_bytes).sum((1, 2))
    if pt.phase == "prefill":
        period = np.maximum(group_cycles.max(1), off_total / np.maximum(bw_cycle, 1e-12))
        worst = np.argmax(group_cycles, axis=1)
        per_group_bound = np.stack([(weighted * (code == c)).sum(2) for c in range(4)], 2)
        bound = np.argmax(per_group_bound[np.arange(d_n), worst], axis=1)
        bound = np.where(off_total / np.maximum(bw_cycle, 1e-12) >= group_cycles.max(1), 3, bound)
    else:
        period = step
        bound = np.argmax(bound_cycles, axis=1)
    period = np.maximum(period, 1.0)
    tokens_per_s = pt.tokens * f_hz / period
    latency_s = np.maximum(step, 1.0) / f_hz

    # Energy of one execution (pJ).
    nc = counts * nf
    mac_pj = np.where(op(pt.u_int8), node.int8_mac_pj, node.fp16_mac_pj)
    e_compute = (nc * (cost.mac_lane_ops * mac_pj + (cost.valu_lane_ops + NONLINEAR_ALU_OPS
                                                     * cost.nl_lane_ops) * node.fp16_alu_pj)).sum((1, 2))
    wmem_pj = np.where(_per_group(batch.k_wmem_rom, batch.g_class)[..., None],
                       node.rom_read_pj_per_bit, node.sram_read_pj_per_bit)
    sram_pj_bit = 0.5 * (node.sram_read_pj_per_bit + node.sram_write_pj_per_bit)
    e_sram = (nc * (cost.dmem_bits * sram_pj_bit + cost.wmem_bits * wmem_pj
                    + cost.instrs * 32 * node.sram_read_pj_per_bit)).sum((1, 2))
    # Clock-gated vector registers/pipelines: clock + data energy per bit written.
    reg_bits = (cost.mac_lane_ops * 32 + (cost.valu_lane_ops + cost.nl_lane_ops) * 16
                + cost.dmem_bits)
    e_control = (nc * (cost.instrs * node.instr_overhead_pj
                       + reg_bits * 2 * node.flop_clock_fj * 1e-3)).sum((1, 2))
    edge_hops = (batch.rows + batch.cols) / 2.0
    # All-gathers forward operands tile to tile along the group (one hop per received bit).
    e_noc = ((nc * recv_bits).sum((1, 2))
             + (xbits * np.maximum(dist, 1.0)).sum(1)
             + (nc * cost.net_bits).sum((1, 2)) * edge_hops) * hop_pj_bit
    e_off = off_total * 8 * mem_pj_bit
    parts = {"compute": e_compute * dyn, "sram": e_sram * dyn, "control": e_control * dyn,
             "noc": e_noc * dyn, "offchip": e_off}
    energy = sum(parts.values())
    power_mw = energy * 1e-12 * (f_hz / period) * 1e3 + static_mw
    return PhaseResult(tokens_per_s=tokens_per_s, latency_s=latency_s, energy_pj=energy,
                       power_mw=power_mw, bound=bound, energy_breakdown_pj=parts,
                       offchip_bytes_per_s=off_total * f_hz / period, group_cycles=group_cycles)


def _per_group(a: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per-group value of a per-class array."""
    return np.take_along_axis(a, cls, axis=1)
