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

import ctypes
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, reduce

import numpy as np

from .. import contract as C
from ..tech import MAX_POWER_DENSITY_W_PER_MM2
from ..tech.node import RETICLE_MM2, OffchipMemory, TechNode
from .area import (
    CHIP_OVERHEAD_FRACTION,
    tile_features,
    tile_flops,
    tile_logic_um2,
    tile_sram_um2,
)
from .batch import DesignBatch
from .kernels import TileArrays, op_cost
from .phase import (
    NONLINEAR_ALU_OPS,
    Entries,
    PhaseResult,
    entry_counts,
    group_terms,
    op_terms,
    phase_results,
    stage_counts,
    stage_start,
)
from .tables import KIND_INDEX, WorkloadTables

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
    256: "on-die weights need more area than the reticle at this node's ROM/SRAM density",
}
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
    "Clock power: control, scalar and issue flip-flops are clocked every cycle; vector "
    "registers, MAC/ALU pipelines and router buffers are clock-gated and charged per write.",
    "Leakage: logic at the node's logic leakage per mm2, SRAM at its SRAM leakage per mm2; ROM "
    "banks not being read are power-gated (one bank per tile leaks, at the SRAM density).",
    f"Die area adds {CHIP_OVERHEAD_FRACTION:.0%} for clock/power distribution, DFT and IO ring.",
    f"exp/rcp/rsqrt cost {NONLINEAR_ALU_OPS:g} FP16 ALU operations of energy each.",
)


@dataclass(frozen=True)
class PPAResult:
    """PPA of D designs; per-phase details in ``phases``."""

    phases: dict[str, PhaseResult]
    area_mm2: np.ndarray
    area_breakdown_mm2: dict[str, np.ndarray]
    clock_power_mw: np.ndarray
    leakage_mw: np.ndarray
    power_mw: np.ndarray           # the highest phase power (sustained peak), memory devices included
    die_power_mw: np.ndarray       # the same without the energy spent in off-chip memory devices
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


# 0-d arrays for np.where's constant branches: a Python scalar costs it ~2 us of dtype
# resolution per call (same dtypes result). Violation flags are bit x bool.
_F0, _K0 = np.array(0.0), np.array(0)


@cache
def keep_freed_heap() -> bool:
    """Let glibc keep freed heap memory instead of returning it to the kernel (once per process).

    A batch's ``[E, U]`` temporaries are ~1 MB each and short-lived. With glibc's defaults
    each one is mmapped (or the heap top trimmed after it is freed) and the next one
    page-faults its memory in again: measured, that doubled the model's time at 1,024
    designs. Fixed thresholds (allocations up to 32 MiB from the heap, trim above 64 MiB
    free) reuse the same pages. Other C libraries: nothing to do. Returns whether applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3            # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 64 << 20))
    except (OSError, AttributeError):
        return False


def evaluate(batch: DesignBatch, tables: WorkloadTables, node: TechNode,
             offchip: Sequence[OffchipMemory]) -> PPAResult:
    """PPA of every design in ``batch`` running the workload ``tables`` at ``node``.

    ``offchip`` lists the off-chip memory records in the order of
    :data:`explorer.design.OFFCHIP_KINDS` (index = ``batch.offchip_kind``).
    """
    keep_freed_heap()
    d_n, g_n = batch.g_tiles.shape
    f_hz = batch.clock_mhz * 1e6
    vdd = np.where(np.isnan(batch.vdd_v), node.vdd_nom_v, batch.vdd_v)
    dyn = node.dyn_energy_scale(vdd)

    # ---- area and static power ---------------------------------------------------------
    feats = tile_features(batch.k_vlen, batch.k_fetch, batch.k_stations, batch.k_xdp,
                          batch.k_vdp, batch.k_xr_wp, batch.k_vr_wp, batch.flit_bits[:, None])
    logic_um2 = tile_logic_um2(feats, batch.k_imem_kib, batch.k_fetch, node)
    sram_um2, wmem_um2 = tile_sram_um2(batch.k_dmem_kib, batch.k_imem_kib, batch.k_wmem_kib,
                                       batch.k_wmem_rom, batch.k_fetch, node)
    cnt = batch.k_count
    logic_mm2 = (cnt * logic_um2).sum(1) * 1e-6
    sram_mm2 = (cnt * sram_um2).sum(1) * 1e-6
    wmem_mm2 = (cnt * wmem_um2).sum(1) * 1e-6
    has_mem = batch.offchip_kind >= 0
    kind = np.maximum(batch.offchip_kind, 0)
    mem_table = _offchip_table(tuple(offchip))

    def mem(attr: str) -> np.ndarray:
        return np.where(has_mem, mem_table[attr][kind], _F0)

    phy_mm2 = batch.channels * mem("phy_area_mm2_per_channel")
    ctrl_mm2 = (batch.channels * mem("controller_kgates_per_channel") * 1e3
                * node.nand2_area_um2 / node.logic_utilization * 1e-6)
    core_mm2 = logic_mm2 + sram_mm2 + wmem_mm2 + phy_mm2 + ctrl_mm2
    area_mm2 = core_mm2 * (1 + CHIP_OVERHEAD_FRACTION)
    pitch_mm = np.sqrt((logic_mm2 + sram_mm2 + wmem_mm2) / np.maximum(batch.n_tiles, 1))
    hop_pj_bit = node.router_pj_per_bit + node.wire_pj_per_bit_mm * pitch_mm  # at nominal Vdd
    offchip_bw = batch.channels * mem("gbytes_per_s_per_channel") * 1e9        # bytes/s
    edge_routers = np.minimum(2 * (batch.rows + batch.cols), batch.n_tiles)
    edge_bw = edge_routers * batch.flit_bits / 8 * f_hz                        # NoC injection
    bw_cycle = np.minimum(offchip_bw, edge_bw) / f_hz                          # bytes/cycle
    clock_mw = ((cnt * tile_flops(feats, gated=False)).sum(1) * node.flop_clock_fj * 1e-15
                * f_hz * dyn * 1e3)
    # ROM banks not being read are power-gated (sleep transistors, as the source paper
    # does): a ROM WMEM leaks like one SRAM bank per tile. SRAM WMEM leaks in full.
    rom_bank_um2 = np.minimum(wmem_um2, C.SRAM_BANK_ROWS * batch.k_vlen * node.rom_um2_per_bit)
    wmem_leak_mm2 = (cnt * np.where(batch.k_wmem_rom, rom_bank_um2, wmem_um2)).sum(1) * 1e-6
    leakage_mw = (logic_mm2 * node.logic_leakage_mw_per_mm2
                  + (sram_mm2 + wmem_leak_mm2) * node.sram_leakage_mw_per_mm2) * node.leakage_scale(vdd)

    # ---- entries: distinct (design, class, group size) -------------------------------
    ent = _entries(batch, bw_cycle)
    ed = ent.design

    def ek(a: np.ndarray) -> np.ndarray:
        return a[ed, _entry_class(batch, ent)][:, None]

    dmem_e = ek(batch.k_dmem_kib)[:, 0] * 1024.0
    active = batch.g_tiles > 0

    # ---- capacities and violations ---------------------------------------------------
    violations = np.zeros(d_n, np.int64)
    violations |= 1 * (area_mm2 > RETICLE_MM2)
    fmax = node.fmax_mhz_at(vdd)
    violations |= 32 * (batch.clock_mhz > fmax * (1 + 1e-9))
    violations |= 64 * ((vdd < node.vdd_min_v - 1e-9) | (vdd > node.vdd_max_v + 1e-9))
    start = stage_start(batch.stage_end)
    w_tile = stage_counts(tables.cum_weight_bytes, batch.stage_end, start) / np.maximum(batch.g_tiles, 1)
    wmem_g = batch.k_wmem_kib[np.arange(d_n)[:, None], batch.g_class] * 1024.0
    violations |= 4 * (~batch.weights_offchip & (active & (w_tile > wmem_g)).any(1))
    # On-die weight capacity per mm2 at the node: even the densest array (ROM) of the
    # design's WMEM kinds must hold all weights within one reticle.
    any_rom = (batch.k_wmem_rom & (cnt > 0)).any(1)
    um2_bit = np.where(any_rom, node.rom_um2_per_bit, node.sram_um2_per_bit)
    weights_mm2 = tables.weight_bytes * 8 * um2_bit * 1e-6
    violations |= 256 * (~batch.weights_offchip & (weights_mm2 > RETICLE_MM2))
    # Op counts of every phase at once ([D, G, U] / [E, U] over all phases' columns).
    counts_all = stage_counts(tables.u["cum_uid"], batch.stage_end, start)
    count_e_all = entry_counts(counts_all, ent.of_group, len(ed))
    work_g = _working_set(tables.u, ent, count_e_all > 0)[ent.of_group]
    kv_g = np.zeros((d_n, g_n))
    dec = tables.phases.get("decode")
    if dec is not None:
        kv_g = stage_counts(dec.cum_kv_bytes, batch.stage_end, start) / np.maximum(batch.g_tiles, 1)
    dmem_g = dmem_e[ent.of_group]
    kv_fits = ~(active & (kv_g + work_g > dmem_g)).any(1)
    kv_offchip = ~kv_fits & has_mem
    violations |= 8 * (~kv_fits & ~has_mem)
    violations |= 16 * ((active & (work_g > dmem_g)).any(1))
    imem_need = (C.ACCS + C.lanes_fp16(batch.k_vlen) * (1 + C.ACCS)) + 32
    violations |= 128 * (((cnt > 0) & (imem_need > batch.k_imem_kib * 256)).any(1))
    kv_off = kv_offchip[ed][:, None]
    cost = op_cost(ent.tile, tables.plan, ent.n, ent.w_off, kv_off)

    # ---- phases -----------------------------------------------------------------------
    terms = op_terms(tables.u, cost, ent, kv_off, node, (batch.rows + batch.cols) / 2.0)
    busy_all = np.where(active[..., None], terms.busy[ent.of_group], _F0)   # [D, G, U]
    grp = group_terms(ent, start, batch.g_row, batch.g_col, batch.g_tiles, batch.g_hops)
    mem_pj_bit, static_mw = mem("pj_per_bit"), clock_mw + leakage_mw
    phases = phase_results(tables, terms, ent, grp, counts_all, count_e_all, busy_all, f_hz, dyn,
                           hop_pj_bit, mem_pj_bit, static_mw)
    power_mw = reduce(np.maximum, [p.power_mw for p in phases.values()])
    # The die's own power excludes the energy spent inside the off-chip memory devices.
    die_mw = reduce(np.maximum, [p.power_mw - p.energy_breakdown_pj["offchip"] * 1e-9
                                 * p.tokens_per_s / max(tables.phases[n].tokens, 1)
                                 for n, p in phases.items()])
    violations |= 2 * (die_mw * 1e-3 / np.maximum(area_mm2, 1e-9) > MAX_POWER_DENSITY_W_PER_MM2)
    int8 = bool(tables.u["any_int8"])
    lanes = C.lanes_int8(batch.k_vlen) if int8 else C.lanes_fp16(batch.k_vlen)
    return PPAResult(
        phases=phases, area_mm2=area_mm2,
        area_breakdown_mm2={"logic": logic_mm2, "sram": sram_mm2, "wmem": wmem_mm2,
                            "phy": phy_mm2 + ctrl_mm2,
                            "overhead": core_mm2 * CHIP_OVERHEAD_FRACTION},
        clock_power_mw=clock_mw, leakage_mw=leakage_mw, power_mw=power_mw, die_power_mw=die_mw,
        peak_flops_per_s=(cnt * 2 * lanes).sum(1) * f_hz,
        offchip_bytes_per_s=offchip_bw, kv_offchip=kv_offchip, violations=violations,
        fmax_mhz=fmax,
    )


@lru_cache(maxsize=16)
def _offchip_table(offchip: tuple[OffchipMemory, ...]) -> dict[str, np.ndarray]:
    """Each off-chip memory figure as an array over :data:`OFFCHIP_KINDS` (cached)."""
    return {f: np.array([getattr(m, f) for m in offchip], float) for f in
            ("gbytes_per_s_per_channel", "pj_per_bit", "phy_area_mm2_per_channel",
             "controller_kgates_per_channel")}


def _entries(batch: DesignBatch, bw_cycle: np.ndarray) -> Entries:
    d_n, g_n = batch.g_tiles.shape
    k_n = batch.k_count.shape[1]
    ncap = int(batch.g_tiles.max()) + 1
    stride = k_n * ncap
    # Padding groups (no tiles, no ops) share one entry (design 0, class 0, no tiles)
    # instead of one per design: nothing is computed for them.
    flat = np.where(batch.g_tiles > 0,
                    np.arange(d_n)[:, None] * stride + batch.g_class * ncap + batch.g_tiles, -1)
    uniq, inv = _unique_inverse(flat.ravel())
    uniq = np.maximum(uniq, 0)
    design = uniq // stride
    cls = (uniq % stride) // ncap
    n = (uniq % ncap)[:, None].astype(float)

    def ek(a: np.ndarray) -> np.ndarray:
        return a[design, cls][:, None]

    tile = TileArrays.of(vlen=ek(batch.k_vlen), fetch=ek(batch.k_fetch), stations=ek(batch.k_stations),
                         xdp=ek(batch.k_xdp), vdp=ek(batch.k_vdp), xr_wp=ek(batch.k_xr_wp),
                         vr_wp=ek(batch.k_vr_wp), imem_kib=ek(batch.k_imem_kib))
    return Entries(design=design, n=n, tile=tile, of_group=inv.reshape(d_n, g_n),
                   flits_per_vec=C.packet_flits(tile.vlen, batch.flit_bits[design][:, None]),
                   w_off=batch.weights_offchip[design][:, None],
                   bw_cycle=bw_cycle[design][:, None], wmem_rom=ek(batch.k_wmem_rom))


def _unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True)`` for 1-D int ``x`` in a few calls (np.unique's
    Python overhead was an eighth of a single design's evaluation)."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.empty(len(x), bool)
    new[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    inv = np.empty(len(x), np.int64)
    inv[order] = np.cumsum(new) - 1
    return xs[new], inv


def _entry_class(batch: DesignBatch, ent: Entries) -> np.ndarray:
    """Tile class of each entry."""
    first = np.zeros(len(ent.design), np.int64)
    first[ent.of_group.ravel()] = batch.g_class.ravel()
    return first


def _working_set(u: Mapping[str, np.ndarray], ent: Entries, present: np.ndarray) -> np.ndarray:
    """Largest per-tile DMEM working set of the ops of each entry (bytes, double-buffered).

    GEMMs hold A rows of input and of their (double-buffered) output slice; element-wise
    ops 4 rows (or 4 vectors) of their share, double-buffered; everything else streams.
    ``u`` is :attr:`WorkloadTables.u` (all phases), ``present`` ``[E, U]``.
    """
    gemm = ((u["kind"] == KIND_INDEX["matmul"]) | (u["kind"] == KIND_INDEX["attn_qk"])
            | (u["kind"] == KIND_INDEX["attn_av"]))[None, :]
    rows = np.minimum(u["batch"] * u["m"], C.ACCS)[None, :]
    n = np.maximum(ent.n, 1)
    # Float ceil-division: exact for these integer sizes (< 2**40), unlike int // float fast.
    n_slice = np.ceil(u["n"][None, :] / n)
    ew = np.minimum(np.ceil(u["elems"][None, :] / n),
                    4 * np.maximum(u["n"][None, :], C.lanes_fp16(ent.tile.vlen)))
    per_op = np.where(gemm, rows * (u["k"][None, :] + 2 * n_slice) * 2, 2 * ew * 2)
    # Column-major for the max over ops: numpy reduces a short contiguous axis slowly.
    return np.asfortranarray(np.where(present, per_op, _K0)).max(axis=1).astype(float)
