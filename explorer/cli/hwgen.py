"""``llm2silicon generate`` (RTL + hand-off collateral) and ``llm2silicon synth`` (Yosys)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..design import Design
from ..errors import InputError
from . import app

__all__ = ["generate_cmd", "synth_cmd"]


def _jobs(jobs: int) -> int:
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {jobs}")
    return jobs


@app.command("generate")
def generate_cmd(
    design: Annotated[Path, typer.Option(help="Design JSON file.")],
    out: Annotated[Path, typer.Option(help="Output folder (rtl/, collateral; written atomically).")],
    jobs: Annotated[int, typer.Option(help="Processes converting distinct tiles in parallel.")] = 2,
    cache: Annotated[bool, typer.Option(help="Reuse tiles converted before from identical inputs.")] = True,
    weights: Annotated[Path | None, typer.Option(
        help="Weights .npz (arrays by op name; float -> FP16, int8 kept) for the ROM init "
             "files; without it the ROMs read a seeded pseudo-random stand-in.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Write Verilog (shared unit/memory modules, one module per tile class, mesh top),
    ROM init files, manifest, SDC, ORFS config.mk, FuseSoC core, file list and README."""
    from hwgen.collateral import generate

    d = Design.from_json(design)
    t0 = time.monotonic()
    if weights is not None and not weights.is_file():
        raise InputError(f"weights file {weights} does not exist")
    generate(d, out, jobs=_jobs(jobs), cache=cache, weights=weights)
    seconds = time.monotonic() - t0
    manifest = json.loads((out / "manifest.json").read_text())
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    summary = {"design": d.name, "out": str(out), "top": manifest["top"],
               "tile_modules": [t["module"] for t in manifest["tile_modules"]],
               "rom_init": manifest["rom_init"]["source"],
               "files": files, "seconds": round(seconds, 1)}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    console = Console()
    console.print(f"{d.name}: {d.mesh.rows}x{d.mesh.cols} mesh, top {manifest['top']}, "
                  f"{len(summary['tile_modules'])} tile module(s), {seconds:.1f} s -> {out}",
                  markup=False)
    if any(m["rom"] for t in manifest["tile_modules"] for m in t["memories"]):
        console.print(f"ROM contents: {manifest['rom_init']['source']}"
                      + (" (seeded pseudo-random, not the model: pass --weights)"
                         if weights is None else ""), markup=False)
    for f in files:
        console.print(f"  {f}", markup=False)


@app.command("synth")
def synth_cmd(
    design: Annotated[Path, typer.Option(help="Design JSON file.")],
    out: Annotated[Path | None, typer.Option(help="Also write <out>/synth/report.json.")] = None,
    jobs: Annotated[int, typer.Option(help="Yosys runs in parallel.")] = 1,
    submesh: Annotated[bool, typer.Option(help="Also check a 2x2 window of the mesh.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Generic Yosys synthesis of every tile class (and a sub-mesh): cells, flip-flops,
    NAND2-equivalents, area at the design's node; fails on latches or combinational loops."""
    from hwgen.emit import write_tree
    from hwgen.synth import SynthError, synth_design

    d = Design.from_json(design)
    console = Console(stderr=True)
    progress = None if as_json else (lambda msg: console.print(msg, style="dim", markup=False))
    try:
        report = synth_design(d, jobs=_jobs(jobs), submesh=submesh, progress=progress)
    except SynthError as e:
        console.print(f"synthesis check failed: {e}", markup=False)
        raise typer.Exit(1) from None
    if out is not None:
        write_tree(out, {"synth/report.json": json.dumps(report, indent=1, sort_keys=True) + "\n"},
                   last="synth")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _print(r: dict) -> None:
    t = Table(title=f"{r['design']}: generic synthesis at {r['node']} "
                    f"(NAND2 {r['nand2_area_um2']:g} um2)")
    for col in ("module", "tile class", "tiles", "cells", "flip-flops", "NAND2-eq",
                "logic um2", "SRAM/ROM bits", "memory um2", "yosys s"):
        t.add_column(col, justify="left" if col in ("module", "tile class") else "right")
    for tile in r["tiles"]:
        s, a = tile["stats"], tile["area"]
        t.add_row(tile["module"], tile["label"], str(tile["count"]), f"{s['cells']:,}",
                  f"{s['flip_flops']:,}", f"{s['nand2_eq']:,.0f}", f"{a['logic_um2']:,.0f}",
                  f"{s['memory_bits']:,}", f"{a['sram_um2'] + a['rom_um2']:,.0f}",
                  "cached" if s["cached"] else f"{s['seconds']:.0f}")
    tot = r["mesh_total"]
    t.add_row("mesh total", "", str(sum(x["count"] for x in r["tiles"])), f"{tot['cells']:,}",
              f"{tot['flip_flops']:,}", f"{tot['nand2_eq']:,.0f}",
              f"{tot['area']['logic_um2']:,.0f}", f"{tot['memory_bits']:,}",
              f"{tot['area']['sram_um2'] + tot['area']['rom_um2']:,.0f}", "")
    console = Console()
    if not console.is_terminal:                     # piped: do not squeeze to 80 columns
        console = Console(width=160)
    console.print(t)
    if "submesh" in r:
        sm = r["submesh"]
        console.print(f"{sm['rows']}x{sm['cols']} sub-mesh (tiles' netlists flattened): "
                      f"{sm['stats']['cells']:,} cells, {sm['stats']['nand2_eq']:,.0f} NAND2-eq; "
                      "no combinational loops, no latches", markup=False)
    console.print("Logic area = NAND2-eq x NAND2 area (cells only, 100 % packed); memory area "
                  "= bits x bit cell / array efficiency (node data).", style="dim", markup=False)
