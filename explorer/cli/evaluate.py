"""``llm2silicon evaluate``: the analytical PPA of one design on one workload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..design import Design
from ..errors import InputError
from ..ppa.model import ASSUMPTIONS
from ..ppa.problem import Problem, summarize
from ..tech import load_node
from . import app

__all__ = ["evaluate_cmd"]

_PHASES = ("all", "prefill", "decode", "encode")


@app.command("evaluate")
def evaluate_cmd(
    workload: Annotated[str, typer.Option(help="Built-in name, HF config.json, model.onnx, or module:Class (torch, meta device).")],
    node: Annotated[str, typer.Option(help="Technology node, e.g. 3nm.")],
    design: Annotated[Path, typer.Option(help="Design JSON file.")],
    phase: Annotated[str, typer.Option(help="all, prefill, decode or encode.")] = "all",
    seq_len: Annotated[int, typer.Option(help="Prompt tokens per sequence (prefill).")] = 2048,
    batch: Annotated[int, typer.Option(help="Sequences per execution.")] = 1,
    kv_len: Annotated[int, typer.Option(help="Cached tokens per sequence (decode).")] = 2048,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    assumptions: Annotated[bool, typer.Option(help="Also print the model's assumptions.")] = False,
) -> None:
    """Print throughput, power, area, energy per token and the limiting bound of a design."""
    if phase not in _PHASES:
        raise InputError(f"--phase must be one of {', '.join(_PHASES)}, not {phase!r}")
    d = Design.from_json(design)
    problem = Problem(workload=workload, node=node, seq_len=seq_len, batch=batch, kv_len=kv_len)
    if load_node(d.node).name != problem.tech.name:
        raise InputError(f"{design}: the design is for node {d.node}, but --node is {node}")
    summary = summarize(problem.evaluate([d]))
    if phase != "all":
        if phase not in summary["phases"]:
            raise InputError(f"workload {problem.model.name} has no {phase} phase")
        summary["phases"] = {phase: summary["phases"][phase]}
    summary = {"design": d.name, "workload": problem.model.name, "node": problem.tech.name,
               "clock_mhz": d.clock_mhz, "weights": d.memory.weights, **summary,
               "assumptions": list(ASSUMPTIONS)}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _print(summary, assumptions)


def _print(s: dict, assumptions: bool) -> None:
    console = Console()
    t = Table(title=f"{s['design']}: {s['workload']} at {s['node']}, {s['clock_mhz']:g} MHz")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, ph in s["phases"].items():
        t.add_row(f"{name} tokens/s", f"{ph['tokens_per_s']:,.4g} ({ph['bound']}-bound)")
        t.add_row(f"{name} power (mW)", f"{ph['power_mw']:,.4g}")
        t.add_row(f"{name} energy (pJ/token)", f"{ph['energy_pj_per_token']:,.4g}")
    t.add_row("area (mm2)", f"{s['area_mm2']:,.4g}")
    t.add_row("die power without memory devices (mW)", f"{s['die_power_mw']:,.4g}")
    t.add_row("peak FLOP/s", f"{s['peak_flops_per_s']:.4g}")
    t.add_row("off-chip bandwidth (B/s)", f"{s['offchip_bytes_per_s']:.4g}")
    t.add_row("weights", s["weights"] + (", KV off chip" if s["kv_offchip"] else ""))
    t.add_row("feasible", "yes" if s["feasible"] else "NO: " + "; ".join(s["violations"]))
    console.print(t)
    if assumptions:
        for a in ASSUMPTIONS:
            console.print("- " + a, style="dim", markup=False)
