"""``llm2silicon flow`` (explore -> generate -> synth -> verify -> report) and ``report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..agents.base import AGENT_NAMES
from ..errors import InputError
from ..flow import (
    DEFAULT_AGENT,
    DEFAULT_BUDGET,
    SKIPPABLE,
    STAGES,
    FlowConfig,
    FlowObserver,
    StageRecord,
    check_flow,
    run_flow,
)
from . import app
from .explore import parse_hyperparams

__all__ = ["flow_cmd", "report_cmd"]


class _RichObserver(FlowObserver):
    """One progress display across the stages: a row per stage, a bar for the search."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.tasks: dict[str, TaskID] = {
            s: progress.add_task(s, total=None, start=False, info="waiting") for s in STAGES}

    def stage_started(self, stage: str, total: int | None) -> None:
        self.p.start_task(self.tasks[stage])
        self.p.update(self.tasks[stage], total=total, info="running")

    def stage_progress(self, stage: str, done: int | None, info: str) -> None:
        if done is None:
            self.p.update(self.tasks[stage], info=info)
        else:
            self.p.update(self.tasks[stage], completed=done, info=info)

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        t = self.tasks[stage]
        total = self.p.tasks[t].total if self.p.tasks[t].total is not None else 1
        if record.reused:
            info = f"[dim]reused ({record.seconds or 0:.0f} s before)[/dim]"
        elif record.status == "done":
            info = f"[green]done[/green] {record.message}"
        elif record.status == "failed":
            info = f"[red]failed[/red] {record.message}"
        else:
            info = f"[yellow]not run[/yellow] {record.message}"
        if not self.p.tasks[t].started:
            self.p.start_task(t)
        # Every ended stage counts as finished (no spinner); the info column says how.
        self.p.update(t, total=total, completed=total, info=info)
        self.p.stop_task(t)


def _console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=140)


@app.command("flow")
def flow_cmd(
    workload: Annotated[str, typer.Option(help="Built-in name, HF config.json, model.onnx, or "
                                               "module:Class (torch, meta device).")],
    node: Annotated[str, typer.Option(help="Technology node, e.g. 28nm.")],
    mode: Annotated[str, typer.Option(help="performance or low-power.")] = "performance",
    budget: Annotated[int, typer.Option(help="PPA evaluations of the search.")] = DEFAULT_BUDGET,
    agent: Annotated[str, typer.Option(help=f"Search agent: {', '.join(AGENT_NAMES)}.")] = DEFAULT_AGENT,
    seed: Annotated[int, typer.Option(help="Seed of every random generator.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run directory (default build/<workload>_<node>_"
                                                   "<mode>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a search started by "
                                                          "`llm2silicon explore` in --out.")] = False,
    jobs: Annotated[int, typer.Option(help="Processes for RTL conversion and Yosys.")] = 2,
    full_verify: Annotated[bool, typer.Option("--full-verify", help="Every verification point, "
                                                                    "not the quick set.")] = False,
    skip: Annotated[list[str] | None, typer.Option(
        "--skip", help=f"Leave out a stage ({', '.join(SKIPPABLE)}; repeatable or comma-separated), "
                       "e.g. verify without Verilator.")] = None,
    hp: Annotated[list[str] | None, typer.Option("--hp", help="Agent hyperparameter name=value "
                                                              "(repeatable).")] = None,
    seq_len: Annotated[int, typer.Option(help="Prompt tokens per sequence (prefill).")] = 2048,
    batch: Annotated[int, typer.Option(help="Sequences per execution.")] = 1,
    kv_len: Annotated[int, typer.Option(help="Cached tokens per sequence (decode).")] = 2048,
    as_json: Annotated[bool, typer.Option("--json", help="Print flow.json when done.")] = False,
) -> None:
    """Explore, generate RTL, synthesise, verify and report in one run directory.

    A rerun skips every stage whose inputs are unchanged; exit code 1 when a stage failed
    or the RTL results differ from the golden model.
    """
    config = FlowConfig(workload=workload, node=node, mode=mode, agent=agent, budget=budget,
                        seed=seed, seq_len=seq_len, batch=batch, kv_len=kv_len, jobs=jobs,
                        quick_verify=not full_verify, hyperparams=parse_hyperparams(hp),
                        skip=tuple(x.strip() for item in skip or [] for x in item.split(",") if x.strip()))
    if out is None:
        stem = Path(workload).parent.name if workload.endswith(".json") else workload
        out = Path("build") / f"{stem}_{node}_{mode}".replace("/", "_").replace(":", "_")
    check_flow(config, out, resume=resume)        # bad input: one error line, no progress drawn
    console = _console()
    with Progress(SpinnerColumn(finished_text=" "), TextColumn("[bold]{task.description:<9}"), BarColumn(bar_width=24),
                  MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                  console=console, transient=False) as progress:
        result = run_flow(config, out, resume=resume, observer=_RichObserver(progress))
    if as_json:
        typer.echo((out / "flow.json").read_text().rstrip())
    else:
        t = Table(title=f"flow {out}: {result.seconds:.0f} s")
        for col in ("stage", "status", "seconds", "output"):
            t.add_column(col, justify="right" if col == "seconds" else "left")
        for s, r in result.stages.items():
            t.add_row(s, r.status + (" (reused)" if r.reused else ""),
                      "-" if r.seconds is None else f"{r.seconds:.1f}", r.message)
        Console(width=None if Console().is_terminal else 160).print(t)
        typer.echo(f"report: {out / 'report.html'}")
    if not result.ok:
        raise typer.Exit(1)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (from flow or explore).")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default RUN_DIR/report.html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Write a self-contained report.html: design, floorplan heat map, PPA breakdowns,
    search curves, fidelity and synthesis tables, reward formula, assumptions."""
    from ..report import build_report

    if out is not None and out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name")
    path = build_report(run_dir, out)
    if as_json:
        typer.echo(json.dumps({"report": str(path), "bytes": path.stat().st_size}))
    else:
        typer.echo(f"wrote {path}")
