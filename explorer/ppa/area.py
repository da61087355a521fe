"""Area: tile logic (linear gate model), SRAM/ROM macros, routers and chip-level blocks.

The logic coefficients (area_model.json) are fitted to Yosys synthesis of the generated
RTL by ``python -m sim.area_fit --refit``; method and fidelity in docs/area.md.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .. import contract as C
from ..tech.node import TechNode

__all__ = ["AREA_FEATURES", "load_area_model", "tile_features", "tile_nand2", "tile_flops",
           "tile_logic_nand2", "tile_logic_um2", "tile_flop_memory_nand2", "tile_sram_um2", "CHIP_OVERHEAD_FRACTION"]

#: Names of the linear area model's features, in order (see area_model.json).
AREA_FEATURES = ("lanes_fp16", "lanes_int8", "valu_lanes", "reduce_adders", "vreg_bits",
                 "fetch", "stations", "stations_x_issue", "issue_sq", "scalar_alus", "xr_wp",
                 "vr_wp_x_vlen", "flit_bits", "const")

#: Die area added on top of tiles and PHYs for clock/power distribution, DFT, the IO
#: ring and whitespace (assumed: 10 %; LLMCompass keeps a comparable "other" share).
CHIP_OVERHEAD_FRACTION = 0.10


@lru_cache(maxsize=1)
def load_area_model() -> dict[str, Any]:
    """The area-model coefficients and their provenance (package data)."""
    text = resources.files("explorer.ppa").joinpath("area_model.json").read_text()
    model = json.loads(text)
    for part in ("nand2", "flops"):
        missing = [f for f in AREA_FEATURES if f not in model[part]]
        if missing:
            raise ValueError(f"area_model.json {part} lacks coefficient {missing[0]!r}")
    if "flop_memory" not in model:
        raise ValueError("area_model.json lacks the flop_memory line (python -m sim.flop_memory)")
    return model


def tile_features(vlen: Any, fetch: Any, stations: Any, xdp: Any, vdp: Any, xr_wp: Any,
                  vr_wp: Any, flit_bits: Any) -> np.ndarray:
    """Feature matrix (last axis = :data:`AREA_FEATURES`) of tiles; inputs broadcast."""
    vlen, fetch, stations, xdp, vdp, xr_wp, vr_wp, flit_bits = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (vlen, fetch, stations, xdp, vdp, xr_wp, vr_wp, flit_bits)))
    iw = C.issue_width(fetch, stations, xdp, vdp)
    # The core builds one ALU per scalar instruction it can issue in a cycle, not per
    # dispatch port (hwgen.tile.core; calibration in docs/area.md).
    alus = C.scalar_issue_per_cycle(fetch, stations, xdp, vdp, xr_wp)
    l16 = C.lanes_fp16(vlen)
    return np.stack([
        l16, C.lanes_int8(vlen), l16, l16 - 1,
        C.VREGS * vlen + C.ACCS * C.acc_bits(vlen),
        fetch, stations, stations * iw, iw * iw, alus, xr_wp, vr_wp * vlen, flit_bits,
        np.ones_like(vlen),
    ], axis=-1)


def _coeffs(part: str) -> np.ndarray:
    model = load_area_model()
    return np.array([model[part][f] for f in AREA_FEATURES])


def tile_nand2(features: np.ndarray) -> np.ndarray:
    """Tile logic (core + NI + router) in NAND2-equivalents."""
    return features @ _coeffs("nand2")


def tile_flops(features: np.ndarray, *, gated: bool | None = None) -> np.ndarray:
    """Flip-flops of a tile; ``gated`` True/False selects the clock-gated / always-clocked
    part (``clock_gated`` features of area_model.json), None all of them."""
    coeffs = _coeffs("flops")
    if gated is not None:
        mask = np.array([f in load_area_model()["clock_gated"] for f in AREA_FEATURES])
        coeffs = np.where(mask == gated, coeffs, 0.0)
    return features @ coeffs


def tile_logic_nand2(features: np.ndarray, imem_kib: Any, fetch: Any) -> np.ndarray:
    """Tile logic in NAND2-eq as Yosys counts it: the linear model plus an IMEM built from
    flip-flops (:func:`tile_flop_memory_nand2`)."""
    return tile_nand2(features) + tile_flop_memory_nand2(imem_kib, fetch)


def tile_logic_um2(features: np.ndarray, imem_kib: Any, fetch: Any, node: TechNode) -> np.ndarray:
    """Placed logic area of a tile in um^2 (NAND2 area / placement utilisation)."""
    return tile_logic_nand2(features, imem_kib, fetch) * node.nand2_area_um2 / node.logic_utilization


def tile_flop_memory_nand2(imem_kib: Any, fetch: Any) -> np.ndarray:
    """NAND2-eq of a tile's IMEM when its banks are below the macro limit and are built from
    flip-flops (0 otherwise): per bank ``nand2_per_bit x bits + nand2_per_bank``, the line
    fitted to Yosys figures of the SRAM wrapper (area_model.json ``flop_memory``)."""
    line = load_area_model()["flop_memory"]
    bits = _imem_flop_bits(imem_kib, fetch)
    return np.where(bits > 0, line["nand2_per_bit"] * bits + line["nand2_per_bank"] * np.asarray(fetch),
                    0.0)


def _imem_flop_bits(imem_kib: Any, fetch: Any) -> np.ndarray:
    """:func:`explorer.contract.imem_flop_bits` over arrays of a design batch, whose padded
    class slots carry fetch 0 (and count 0, so any value will do for them)."""
    return C.imem_flop_bits(np.asarray(imem_kib, np.int64), np.maximum(np.asarray(fetch, np.int64), 1))


def tile_sram_um2(dmem_kib: Any, imem_kib: Any, wmem_kib: Any, wmem_rom: Any, fetch: Any,
                  node: TechNode) -> tuple[np.ndarray, np.ndarray]:
    """(DMEM + IMEM SRAM area, WMEM area) of a tile in um^2; an IMEM whose banks are built
    from flip-flops (:func:`tile_flop_memory_nand2`) is logic, not SRAM."""
    bits = 8 * 1024
    imem = np.where(_imem_flop_bits(imem_kib, fetch) > 0, 0.0, np.asarray(imem_kib, float))
    sram = (np.asarray(dmem_kib, float) + imem) * bits * node.sram_um2_per_bit
    per_bit = np.where(np.asarray(wmem_rom, bool), node.rom_um2_per_bit, node.sram_um2_per_bit)
    return sram, np.asarray(wmem_kib, float) * bits * per_bit
