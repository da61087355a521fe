"""Area calibration points: Yosys figures of generated tiles, with their provenance.

``sim/area_points.json`` holds one :class:`AreaPoint` per configuration of :data:`CONFIGS`:
the tile synthesised as a 1 x 1 mesh by hwgen's hierarchical flow and what Yosys reported,
stamped with the Yosys version, the commit and a digest of every source the RTL depends
on. :mod:`sim.area_fit` fits and evaluates the analytical area model on them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explorer.design import Design, MeshConfig, TileConfig

__all__ = ["CONFIGS", "POINTS_PATH", "RTL_SOURCES", "AreaPoint", "load_points", "synth_point",
           "collect_points", "points_digest", "rtl_digest", "memory_bits"]

ROOT = Path(__file__).resolve().parents[1]
POINTS_PATH = ROOT / "sim" / "area_points.json"
#: What the generated RTL depends on: hwgen and the tile contract it reads (derived
#: properties such as the fetch group come from explorer/contract.py and design.py; commit
#: 100479b changed four calibration tiles through contract.py alone).
RTL_SOURCES = ("hwgen", "explorer/contract.py", "explorer/design.py")
_BITS_PER_KIB = 8 * 1024


def _t(vlen, fetch, stations, xdp, vdp, xr_wp, vr_wp, dmem, imem, wmem, kind="rom"):
    return TileConfig(fetch=fetch, vlen=vlen, stations=stations, xdp=xdp, vdp=vdp, xr_wp=xr_wp,
                      vr_wp=vr_wp, dmem_kib=dmem, imem_kib=imem, wmem_kib=wmem, wmem_kind=kind)


#: (tile, flit_bits) points, heterogeneous in every model feature; issue width
#: iw = min(fetch, stations, xdp + vdp) and scalar ALUs min(xdp, xr_wp, iw) vary apart from
#: fetch, xdp and xr_wp. Every memory bank exceeds hwgen's 4096-bit flip-flop limit, so
#: all memory is macro on both sides. The first 13 identify every fitted coefficient
#: (13 and 17 separate scalar ALUs from scalar write ports; the leave-one-out check needs two).
CONFIGS: tuple[tuple[TileConfig, int], ...] = (
    (_t(128, 1, 2, 1, 1, 1, 1, 16, 1, 0), 64),
    (_t(128, 2, 4, 1, 1, 1, 1, 16, 2, 16), 64),
    (_t(256, 2, 8, 1, 2, 1, 1, 64, 8, 256), 128),
    (_t(128, 4, 8, 2, 2, 2, 1, 32, 4, 0), 64),
    (_t(256, 4, 16, 2, 2, 1, 2, 128, 4, 64, "sram"), 256),
    (_t(128, 1, 8, 1, 1, 1, 2, 16, 1, 0), 128),
    (_t(256, 1, 1, 1, 1, 1, 1, 16, 1, 0), 64),
    (_t(512, 4, 4, 1, 4, 1, 2, 256, 8, 512), 64),
    (_t(128, 8, 16, 4, 4, 4, 1, 16, 8, 0), 64),
    (_t(256, 2, 32, 2, 1, 2, 1, 32, 2, 0), 64),
    (_t(128, 2, 2, 2, 2, 2, 2, 512, 2, 16, "sram"), 256),
    (_t(512, 1, 4, 1, 1, 1, 1, 32, 1, 16), 512),
    (_t(128, 4, 4, 1, 1, 2, 1, 16, 4, 0), 64),
    (_t(512, 2, 8, 1, 2, 1, 1, 64, 8, 256), 512),
    (_t(256, 8, 8, 2, 4, 2, 2, 64, 16, 0), 128),
    (_t(1024, 2, 4, 1, 2, 1, 1, 64, 4, 0), 128),
    (_t(128, 2, 4, 1, 1, 4, 1, 16, 2, 0), 64),
)


@dataclass(frozen=True)
class AreaPoint:
    """One synthesised tile: its configuration and Yosys' figures (memories excluded)."""

    tile: TileConfig
    flit_bits: int
    nand2_eq: float
    flip_flops: int
    cells: int
    sram_bits: int
    rom_bits: int
    provenance: dict
    #: shared modules (per-lane arithmetic units, decoders): instances and figures of one
    units: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.tile}-L{self.flit_bits}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "tile": self.tile.to_dict(), "flit_bits": self.flit_bits,
                "nand2_eq": self.nand2_eq, "flip_flops": self.flip_flops, "cells": self.cells,
                "sram_bits": self.sram_bits, "rom_bits": self.rom_bits,
                "units": self.units, "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AreaPoint:
        return cls(TileConfig.from_dict(d["tile"]), int(d["flit_bits"]), float(d["nand2_eq"]),
                   int(d["flip_flops"]), int(d["cells"]), int(d["sram_bits"]),
                   int(d["rom_bits"]), dict(d["provenance"]), dict(d.get("units", {})))


def memory_bits(tile: TileConfig) -> tuple[int, int]:
    """(SRAM bits, ROM bits) as the model counts them (DMEM + IMEM + WMEM)."""
    wmem = tile.wmem_kib * _BITS_PER_KIB
    sram = (tile.dmem_kib + tile.imem_kib) * _BITS_PER_KIB
    return (sram, wmem) if tile.wmem_kind == "rom" else (sram + wmem, 0)


def load_points(path: Path = POINTS_PATH) -> list[AreaPoint]:
    """The committed Yosys points (empty when the file does not exist)."""
    if not path.exists():
        return []
    return [AreaPoint.from_dict(d) for d in json.loads(path.read_text())["points"]]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def rtl_digest() -> str:
    """SHA-256 over :data:`RTL_SOURCES` (the working tree may hold uncommitted edits)."""
    h = hashlib.sha256()
    for src in RTL_SOURCES:
        root = ROOT / src
        for p in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if p.is_file() and p.suffix in (".py", ".v", ".vlt"):
                h.update(str(p.relative_to(ROOT)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def synth_point(tile: TileConfig, flit_bits: int, *, cache_dir: Path | None = None,
                jobs: int = 1) -> AreaPoint:
    """Synthesise one 1 x 1 mesh of ``tile`` with hwgen's flow and return its point.

    Raises RuntimeError when Yosys' macro memory bits differ from the model's (the two
    sides would then not count memory the same way)."""
    from hwgen.synth import FLOW_VERSION, synth_design, yosys_version

    design = Design(f"areafit {tile}", "7nm", MeshConfig.uniform(1, 1, tile, flit_bits))
    report = synth_design(design, jobs=jobs, cache_dir=cache_dir, submesh=False)
    (entry,) = report["tiles"]
    stats = entry["stats"]
    sram = sum(m["bits"] for m in stats["memories"] if not m["rom"])
    rom = sum(m["bits"] for m in stats["memories"] if m["rom"])
    if (sram, rom) != memory_bits(tile):
        raise RuntimeError(f"{tile}: Yosys macro bits (SRAM {sram}, ROM {rom}) differ from the "
                           f"model's {memory_bits(tile)}: some bank was built from flip-flops")
    prov = {"yosys": yosys_version(),
            "rtl_commit": _git("log", "-1", "--format=%H", "--", *RTL_SOURCES),
            "rtl_dirty": bool(_git("status", "--porcelain", "--", *RTL_SOURCES)),
            "rtl_src_sha256": rtl_digest(), "rtl_sources": list(RTL_SOURCES),
            "flow_version": FLOW_VERSION,
            "flow": report["flow"], "seconds": stats["seconds"], "cached": stats["cached"],
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    units = {name: {"instances": int(n), "nand2_eq": float(report["modules"][name]["nand2_eq"]),
                    "flip_flops": int(report["modules"][name]["flip_flops"])}
             for name, n in sorted(entry.get("instances", {}).items())
             if name in report.get("modules", {})}
    return AreaPoint(tile, flit_bits, float(stats["nand2_eq"]), int(stats["flip_flops"]),
                     int(stats["cells"]), sram, rom, prov, units)


def _save(points: Sequence[AreaPoint], path: Path) -> None:
    doc = {"_about": "Yosys generic-synthesis figures of generated tiles (sim/area_fit.py); "
                     "nand2_eq = transistors / 4 of abc -g cmos2, memories as macro black "
                     "boxes (their bits listed separately).",
           "points": [p.to_dict() for p in points]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def collect_points(configs: Sequence[tuple[TileConfig, int]] = CONFIGS, *,
                   path: Path = POINTS_PATH, limit: int | None = None, redo: bool = False,
                   progress: Callable[[str], None] | None = None) -> list[AreaPoint]:
    """Synthesise the configurations ``path`` lacks (at most ``limit``), saving after each.

    ``redo`` synthesises every configuration again (hwgen's cache makes an unchanged
    module instant) and replaces the stored points: this re-stamps the provenance after
    hwgen changed, and a figure that moved shows the change reached the RTL."""
    points = {p.key: p for p in load_points(path)}
    todo = [(t, f) for t, f in configs if redo or f"{t}-L{f}" not in points][:limit]
    for i, (tile, flit) in enumerate(todo):
        if progress:
            progress(f"[{i + 1}/{len(todo)}] synthesising {tile} with {flit}-bit flits")
        new = synth_point(tile, flit)
        old = points.get(new.key)
        if progress and old is not None and (old.nand2_eq, old.flip_flops) != (
                new.nand2_eq, new.flip_flops):
            progress(f"  changed: {old.nand2_eq:.1f} -> {new.nand2_eq:.1f} NAND2-eq, "
                     f"{old.flip_flops} -> {new.flip_flops} flip-flops")
        points[new.key] = new
        _save(list(points.values()), path)
    return list(points.values())


def points_digest(path: Path = POINTS_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
