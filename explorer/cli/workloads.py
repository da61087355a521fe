"""``llm2silicon workloads`` and ``llm2silicon workload show``: the models and their graphs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..workloads import (
    WORKLOAD_NAMES,
    build_graph,
    builtin_provenance,
    load_workload,
    workload_summary,
)
from . import app

__all__ = ["workload_app"]

workload_app = typer.Typer(rich_markup_mode=None)
app.add_typer(workload_app, name="workload")


@workload_app.callback(invoke_without_command=True)
def _workload(ctx: typer.Context) -> None:
    """Inspect one workload (built-in name, HF config.json, model.onnx or module:Class)."""
    if ctx.invoked_subcommand is None:      # bare `workload`: help, exit 0 (not a usage error)
        typer.echo(ctx.get_help())
        raise typer.Exit(0)

_JSON = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _console() -> Console:
    """Rich console; 120 columns when writing to a file or pipe (rich would assume 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _si(x: float) -> str:
    """1.61e10 -> '16.10 G' (engineering prefixes for wide-ranging counts)."""
    for div, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {prefix}"
    return f"{x:g} "


@app.command("workloads")
def workloads(json_out: _JSON = False) -> None:
    """List the built-in workloads: name, parameters, layers, hidden size, source."""
    rows = []
    for name in WORKLOAD_NAMES:
        w = load_workload(name)
        prov = builtin_provenance(name)
        rows.append({"name": name, "params": w.params, "model_type": w.model_type,
                     "layers": w.decoder.num_layers, "hidden_size": w.decoder.hidden_size,
                     "vision_layers": w.vision.num_layers if w.vision else 0,
                     "source": prov["hf_repo"], "params_source": prov["params_source"]})
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Built-in workloads")
    table.add_column("name", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("layers", justify="right", no_wrap=True)
    table.add_column("hidden", justify="right")
    table.add_column("source", overflow="fold")
    for r in rows:
        layers = f"{r['layers']}" + (f" + {r['vision_layers']} vis" if r["vision_layers"] else "")
        table.add_row(r["name"], f"{r['params']:,}", r["model_type"], layers,
                      str(r["hidden_size"]), r["source"])
    _console().print(table)


@workload_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Built-in name or path to an HF config.json.")],
    json_out: _JSON = False,
    phase: Annotated[str, typer.Option(help="Graph to describe: decode, prefill or encode.")]
    = "decode",
    seq_len: Annotated[int, typer.Option(help="Prompt tokens per sequence (prefill).")] = 2048,
    batch: Annotated[int, typer.Option(help="Sequences per execution.")] = 1,
    kv_len: Annotated[int, typer.Option(help="Cached tokens attended per sequence (decode).")]
    = 2048,
    images: Annotated[int, typer.Option(help="Images per execution (encode).")] = 1,
    dtype: Annotated[str, typer.Option(help="fp16, or int8 weights/activations/KV.")] = "fp16",
) -> None:
    """Parameters, FLOPs/token, bytes and the op mix of one workload phase."""
    w = load_workload(name)
    graph = build_graph(w, phase, seq_len=seq_len, batch=batch, kv_len=kv_len, images=images,
                        dtype=dtype)
    summary = workload_summary(w, kv_len=kv_len, seq_len=seq_len, dtype=dtype)
    phase_info = {
        "phase": phase, "tokens": graph.meta["tokens"], "batch": batch,
        "seq_len": graph.meta["seq_len"], "kv_len": graph.meta["kv_len"],
        "images": graph.meta["images"], "ops": len(graph), "op_kinds": graph.kind_counts(),
        "flops": graph.flops, "flops_per_token": graph.flops / graph.meta["tokens"],
        "weight_read_bytes": int(graph.total("weight_read_bytes")),
        "kv_read_bytes": int(graph.total("kv_read_bytes")),
        "kv_write_bytes": int(graph.total("kv_write_bytes")),
        "edges": graph.graph.number_of_edges(),
    }
    if json_out:
        typer.echo(json.dumps({**summary, "graph": phase_info}, indent=2))
        return
    table = Table(title=f"{w.name} ({w.model_type}, {summary['source']})", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("params", f"{summary['params']:,}"),
        *((f"  {blk}", f"{n:,}") for blk, n in summary["params_by_block"].items()),
        ("layers / hidden", f"{summary['n_layers']} / {summary['hidden_size']}"),
        ("heads / kv heads / head_dim",
         f"{summary['num_heads']} / {summary['num_kv_heads']} / {summary['head_dim']}"),
        (f"weight bytes ({dtype})", f"{summary['weight_bytes']:,}"),
        ("kv bytes per token", f"{summary['kv_bytes_per_token']:,}"),
        (f"flops_per_token_decode (kv_len {kv_len})",
         f"{_si(summary['flops_per_token_decode'])}FLOP"),
        (f"flops_prefill (seq_len {seq_len})", f"{_si(summary['flops_prefill'])}FLOP"),
        *((("flops_encode (1 image)", f"{_si(summary['flops_encode'])}FLOP"),)
          if "flops_encode" in summary else ()),
        (f"{phase}: ops / edges", f"{phase_info['ops']} / {phase_info['edges']}"),
        (f"{phase}: tokens", f"{phase_info['tokens']:,}"),
        (f"{phase}: flops", f"{_si(phase_info['flops'])}FLOP"),
        (f"{phase}: weight read bytes", f"{phase_info['weight_read_bytes']:,}"),
        (f"{phase}: kv read / write bytes",
         f"{phase_info['kv_read_bytes']:,} / {phase_info['kv_write_bytes']:,}"),
        *((f"  {kind} ops", str(c)) for kind, c in phase_info["op_kinds"].items()),
    ):
        table.add_row(label, value)
    console = _console()
    console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}")
