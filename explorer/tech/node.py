"""Technology-node and off-chip-memory records: every figure carries its source."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "Source",
    "TechNode",
    "OffchipMemory",
    "RETICLE_MM2",
    "MAX_POWER_DENSITY_W_PER_MM2",
    "CONSTANT_SOURCES",
    "TECH_FIGURES",
    "OFFCHIP_FIGURES",
]

#: Maximum single-exposure field 26 mm x 33 mm = 858 mm^2 (ASML DUV/EUV scanners; the
#: limit every monolithic die obeys). Source: ASML TWINSCAN NXE:3400 field size.
RETICLE_MM2 = 26.0 * 33.0

#: Highest sustained die power density shipped in volume: NVIDIA H100 SXM5, 700 W board
#: power on an 814 mm^2 die = 0.86 W/mm^2 (the 700 W also feeds the HBM stacks, so the
#: die itself runs a little lower). A liquid/heavy-air-cooled ceiling, not a mobile one.
MAX_POWER_DENSITY_W_PER_MM2 = 700.0 / 814.0


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
        for name in ("ref", "status", "note", "url"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Source.{name} must be a string, not {getattr(self, name)!r}")
        if self.status not in ("quoted", "derived", "assumed"):
            raise ValueError(f"Source.status must be quoted, derived or assumed, not {self.status!r}")
        if not self.ref.strip():
            raise ValueError("Source.ref must not be empty")
        if self.status != "quoted" and not self.note.strip():
            raise ValueError(f"Source.note must explain a {self.status} figure ({self.ref!r})")


@dataclass(frozen=True)
class TechNode:
    """Per-node technology figures used by the PPA model (units in the field names).

    Energies are at nominal Vdd; :meth:`dyn_energy_scale` and :meth:`leakage_scale` move
    them to another supply, :meth:`fmax_mhz_at` gives the clock ceiling at a supply.
    Leakage figures are per mm^2 of placed logic (core area, utilisation included) and per
    mm^2 of SRAM macro. Instances come from :func:`explorer.tech.load_node`, whose data file
    (``explorer/tech/nodes.toml``) gives every figure a :class:`Source` in ``sources``.

    Raises
    ------
    TypeError
        A figure is not a number.
    ValueError
        A figure is not positive and finite, a fraction exceeds 1, or the voltages are not
        ordered ``vth < vdd_min <= vdd_nom <= vdd_max``.
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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("TechNode.name must be a non-empty string")
        if isinstance(self.feature_nm, bool) or not isinstance(self.feature_nm, int) or self.feature_nm <= 0:
            raise ValueError(f"TechNode.feature_nm must be a positive integer, not {self.feature_nm!r}")
        for name in TECH_FIGURES:
            _check_positive("TechNode", name, getattr(self, name))
        for name in ("logic_utilization", "sram_array_efficiency", "rom_array_efficiency"):
            if getattr(self, name) > 1.0:
                raise ValueError(f"TechNode.{name} must be at most 1, not {getattr(self, name)}")
        if not self.vth_v < self.vdd_min_v <= self.vdd_nom_v <= self.vdd_max_v:
            raise ValueError(f"TechNode voltages must satisfy vth < vdd_min <= vdd_nom <= vdd_max, not "
                             f"{self.vth_v} / {self.vdd_min_v} / {self.vdd_nom_v} / {self.vdd_max_v}")

    def fmax_mhz_at(self, vdd_v: float) -> float:
        """Clock ceiling at ``vdd_v`` by the alpha-power law (Sakurai & Newton 1990, alpha 1.3)."""
        alpha = 1.3
        def drive(v: float) -> float:
            return np.maximum(v - self.vth_v, 0.0) ** alpha / v
        return self.fmax_mhz * drive(vdd_v) / drive(self.vdd_nom_v)

    def dyn_energy_scale(self, vdd_v: float) -> float:
        """Dynamic energy per operation relative to nominal Vdd: (V / Vnom)^2 (CV^2)."""
        return (vdd_v / self.vdd_nom_v) ** 2

    def leakage_scale(self, vdd_v: float) -> float:
        """Leakage power relative to nominal Vdd: (V / Vnom)^3.

        Sub-threshold current grows roughly exponentially with V through DIBL; over the
        +-20 % DVFS range it is fitted by (V/Vnom)^2, and power is that current times V.
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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("OffchipMemory.name must be a non-empty string")
        for name in OFFCHIP_FIGURES:
            _check_positive("OffchipMemory", name, getattr(self, name))


def _check_positive(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}.{name} must be a number, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}.{name} must be positive and finite, not {value}")


#: The cited figures of :class:`TechNode` (every field except name, feature_nm, sources).
TECH_FIGURES: tuple[str, ...] = tuple(
    f.name for f in fields(TechNode) if f.name not in ("name", "feature_nm", "sources"))

#: The cited figures of :class:`OffchipMemory`.
OFFCHIP_FIGURES: tuple[str, ...] = tuple(
    f.name for f in fields(OffchipMemory) if f.name not in ("name", "sources"))

#: Sources of the module-level constants (shown by ``llm2silicon nodes --sources``).
CONSTANT_SOURCES: Mapping[str, Source] = {
    "RETICLE_MM2": Source(
        ref="ASML TWINSCAN NXE:3400 / DUV scanners: 26 mm x 33 mm maximum exposure field",
        status="quoted", note="26 x 33 = 858 mm^2",
        url="https://www.asml.com/en/products/euv-lithography-systems/twinscan-nxe3400c"),
    "MAX_POWER_DENSITY_W_PER_MM2": Source(
        ref="NVIDIA H100 SXM5: 700 W max thermal design power; GH100 die 814 mm^2",
        status="derived",
        note="700 W / 814 mm^2 = 0.86 W/mm^2; the board power includes the HBM stacks, so this "
             "slightly overstates the die's own density (an upper bound for the model)",
        url="https://developer.nvidia.com/blog/nvidia-hopper-architecture-in-depth/"),
}
