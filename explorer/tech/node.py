"""Technology-node and off-chip-memory records: every figure carries its source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Source", "TechNode", "OffchipMemory", "RETICLE_MM2"]

#: Maximum single-exposure field 26 mm x 33 mm = 858 mm^2 (ASML DUV/EUV scanners; the
#: limit every monolithic die obeys). Source: ASML TWINSCAN NXE:3400 field size.
RETICLE_MM2 = 26.0 * 33.0


@dataclass(frozen=True)
class Source:
    """Where one figure comes from.

    status is ``"quoted"`` (taken from ``ref``), ``"derived"`` (computed, ``note`` shows how)
    or ``"assumed"`` (no direct source; ``note`` says why the value is reasonable).
    """

    ref: str
    status: str
    note: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("quoted", "derived", "assumed"):
            raise ValueError(f"Source.status must be quoted, derived or assumed, not {self.status!r}")


@dataclass(frozen=True)
class TechNode:
    """Per-node technology figures used by the PPA model (units in the field names).

    Energies are at nominal Vdd; :meth:`dyn_energy_scale` and :meth:`leakage_scale` move
    them to another supply, :meth:`fmax_mhz_at` gives the clock ceiling at a supply.
    """

    name: str
    feature_nm: int
    vdd_nom_v: float
    vdd_min_v: float
    vdd_max_v: float
    vth_v: float
    fmax_mhz: float
    fp16_mac_pj: float          # FP16 x FP16 multiply + FP32 accumulate, one lane
    int8_mac_pj: float          # INT8 x INT8 multiply + INT32 accumulate, one lane
    fp16_alu_pj: float          # one FP16 element-wise op (add/mul/max), one lane
    instr_overhead_pj: float    # fetch/decode/issue/register-file control per instruction
    flop_clock_fj: float        # clock energy per flip-flop per cycle (clock tree + flop)
    nand2_area_um2: float
    logic_utilization: float    # placed std-cell density (cell area / core area)
    sram_bitcell_um2: float
    sram_array_efficiency: float
    rom_bitcell_um2: float
    rom_array_efficiency: float
    sram_read_pj_per_bit: float
    sram_write_pj_per_bit: float
    rom_read_pj_per_bit: float
    logic_leakage_mw_per_mm2: float
    sram_leakage_mw_per_mm2: float
    wire_pj_per_bit_mm: float
    wire_delay_ps_per_mm: float
    router_pj_per_bit: float    # buffer + crossbar + arbitration, per bit per hop (no wire)
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)

    def fmax_mhz_at(self, vdd_v: float) -> float:
        """Clock ceiling at ``vdd_v`` by the alpha-power law (Sakurai & Newton 1990, alpha 1.3)."""
        alpha = 1.3
        def drive(v: float) -> float:
            return max(v - self.vth_v, 0.0) ** alpha / v
        return self.fmax_mhz * drive(vdd_v) / drive(self.vdd_nom_v)

    def dyn_energy_scale(self, vdd_v: float) -> float:
        """Dynamic energy per operation relative to nominal Vdd: (V / Vnom)^2 (CV^2)."""
        return (vdd_v / self.vdd_nom_v) ** 2

    def leakage_scale(self, vdd_v: float) -> float:
        """Leakage power relative to nominal Vdd.

        I_leak grows roughly exponentially with V through DIBL; a cubic in V/Vnom is a
        common fit over +-20 % (used here), times V for power.
        """
        r = vdd_v / self.vdd_nom_v
        return r ** 3

    @property
    def sram_um2_per_bit(self) -> float:
        """SRAM macro area per bit including periphery."""
        return self.sram_bitcell_um2 / self.sram_array_efficiency

    @property
    def rom_um2_per_bit(self) -> float:
        """ROM macro area per bit including periphery."""
        return self.rom_bitcell_um2 / self.rom_array_efficiency


@dataclass(frozen=True)
class OffchipMemory:
    """One off-chip memory kind: per channel (LPDDR) or per stack (HBM) figures."""

    name: str
    gbytes_per_s_per_channel: float
    pj_per_bit: float
    phy_area_mm2_per_channel: float
    controller_kgates_per_channel: float  # NAND2-equivalents (thousands); area scales with node
    capacity_gib_per_channel: float
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False, repr=False)
