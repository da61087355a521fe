"""``llm2silicon explore`` (one search run) and ``llm2silicon campaign`` (many, in parallel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..agents.base import AGENT_NAMES
from ..campaign import CampaignSpec, run_campaign
from ..errors import InputError
from ..ppa.problem import Problem
from ..reward import MODES, formula_text
from ..run import RunConfig, run_search
from ..storage import Storage, sqlite_url
from . import app

__all__ = ["explore_cmd", "campaign_cmd", "parse_hyperparams", "parse_problems"]


def parse_hyperparams(items: list[str] | None) -> dict[str, Any]:
    """``["population=20", "eta=15.0"]`` -> dict (values parsed as JSON, else strings)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--hp must look like name=value, not {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=120)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
                    console=console, transient=False)


@app.command("explore")
def explore_cmd(
    workload: Annotated[str, typer.Option(help="Built-in workload name or a model file.")],
    node: Annotated[str, typer.Option(help="Technology node, e.g. 3nm.")],
    out: Annotated[Path, typer.Option(help="Run directory (design.json, ppa.json, plots, database).")],
    mode: Annotated[str, typer.Option(help="performance or low-power.")] = "performance",
    agent: Annotated[str, typer.Option(help=f"Search agent: {', '.join(AGENT_NAMES)}.")] = "sac-moe",
    budget: Annotated[int, typer.Option(help="PPA evaluations (= episodes).")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of every random generator.")] = 0,
    storage: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the results database "
                                                     "(default: sqlite in --out).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    hp: Annotated[list[str] | None, typer.Option("--hp", help="Agent hyperparameter name=value "
                                                              "(repeatable).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Evaluations between checkpoints.")] = 200,
    seq_len: Annotated[int, typer.Option(help="Prompt tokens per sequence (prefill).")] = 2048,
    batch: Annotated[int, typer.Option(help="Sequences per execution.")] = 1,
    kv_len: Annotated[int, typer.Option(help="Cached tokens per sequence (decode).")] = 2048,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search the design space of one workload on one node; write the best design and plots."""
    from ..results import pick_design, summarize_run, write_outputs

    config = RunConfig(workload=workload, node=node, mode=mode, agent=agent, budget=budget,
                       seed=seed, hyperparams=parse_hyperparams(hp), seq_len=seq_len, batch=batch,
                       kv_len=kv_len, checkpoint_every=checkpoint_every)
    problem = Problem(workload=workload, node=node, seq_len=seq_len, batch=batch, kv_len=kv_len)
    problem.tech, problem.tables  # noqa: B018  (unknown names fail here, before any output)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    from ..flow import check_agent

    check_agent(config, problem)     # a bad --hp fails before the database or progress bar
    out.mkdir(parents=True, exist_ok=True)
    db = Storage(storage or sqlite_url(out / "results.sqlite"))
    console = _console()
    try:
        with _progress(console) as bar:
            task = bar.add_task(f"{agent} {problem.model.name}/{problem.tech.name}/{mode}",
                                total=budget, best="-")
            result = run_search(config, db, str(out.resolve()), out / "checkpoint.pkl", resume=resume,
                                progress=lambda done, total, best: bar.update(
                                    task, completed=done, best=f"{best:.4f}"))
        summary = summarize_run(result.run, db.evaluations(result.run.id))
        paths = write_outputs(out, summary, problem)
        design = pick_design(summary, problem)
    finally:
        db.close()
    row = summary.rows[summary.pick_episode]
    report = {"out": str(out), "evaluations": len(summary.rows), "evaluated_now": result.evaluated,
              "replayed": result.replayed, "resumed_from": result.resumed_from,
              "best_reward": summary.best_reward, "pick_episode": summary.pick_episode,
              "pick_method": summary.pick_method, "pick_reward": row["reward"],
              "files": {k: str(v) for k, v in paths.items()}}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    t = Table(title=f"{design.name}: picked by {summary.pick_method}")
    t.add_column("figure")
    t.add_column("value", justify="right")
    m = design.mesh
    t.add_row("mesh", f"{m.rows} x {m.cols} ({m.n_tiles} tiles, {len(m.tile_classes)} classes)")
    for k, (cls, n) in enumerate(zip(m.tile_classes, m.class_counts(), strict=True)):
        t.add_row(f"class {k} ({n} tiles)", str(cls))
    t.add_row("memory", f"weights {design.memory.weights}, off-chip "
              f"{design.memory.offchip or 'none'} x {design.memory.channels}")
    t.add_row("clock / Vdd", f"{design.clock_mhz:g} MHz / {design.vdd_v} V")
    for name in ("prefill", "decode", "encode"):
        v = row[f"{name}_tokens_per_s"]
        if v is not None:
            t.add_row(f"{name} tokens/s", f"{v:,.4g} ({row['ppa']['bound'][name]}-bound)")
    t.add_row("power (mW)", f"{row['power_mw']:,.4g}")
    t.add_row("area (mm2)", f"{row['area_mm2']:,.4g}")
    t.add_row("reward", f"{row['reward']:.4f} (best seen {summary.best_reward:.4f})")
    t.add_row("feasible / admissible", f"{row['feasible']} / {row['admissible']}")
    Console().print(t)
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")


def _csv(value: str, name: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise InputError(f"--{name} must list at least one value")
    return items


def parse_problems(value: str) -> tuple[tuple[str, str], ...]:
    """``"llama3.1-8b=performance,smolvlm-256m=low-power"`` -> ((workload, mode), ...)."""
    pairs = []
    for item in _csv(value, "problems"):
        workload, sep, mode = item.rpartition("=")
        if not sep or not workload or mode not in MODES:
            raise InputError(f"--problems items must be workload=mode with mode one of "
                             f"{', '.join(MODES)}, not {item!r}")
        pairs.append((workload, mode))
    return tuple(pairs)


@app.command("campaign")
def campaign_cmd(
    nodes: Annotated[str, typer.Option(help="Comma-separated nodes.")],
    out: Annotated[Path, typer.Option(help="Campaign directory (runs/, summary.md, summary.csv).")],
    workloads: Annotated[str | None, typer.Option(help="Comma-separated workloads (x --modes).")] = None,
    problems: Annotated[str | None, typer.Option(
        help="Comma-separated workload=mode pairs instead of --workloads x --modes, e.g. "
             "llama3.1-8b=performance,smolvlm-256m=low-power.")] = None,
    agents: Annotated[str, typer.Option(help="Comma-separated agents.")] = "sac-moe,random,grid",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0",
    modes: Annotated[str, typer.Option(help="Comma-separated modes.")] = "performance",
    budget: Annotated[int, typer.Option(help="PPA evaluations per run.")] = 2000,
    jobs: Annotated[int, typer.Option(help="Parallel worker processes.")] = 2,
    storage: Annotated[str | None, typer.Option(help="One SQLAlchemy URL for all runs "
                                                     "(default: one sqlite file per run).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Reuse finished runs, resume the rest.")] = False,
    backend: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (--backend ray; "
                                                     "default: start a local Ray).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result rows as JSON.")] = False,
) -> None:
    """Run workloads x nodes x modes x agents x seeds; write a per-node summary table."""
    from ..campaign import BACKENDS

    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if address is not None and backend != "ray":
        raise InputError("--address needs --backend ray")
    if (workloads is None) == (problems is None):
        raise InputError("give either --workloads (with --modes) or --problems")
    pairs = parse_problems(problems) if problems is not None else None
    if pairs is not None:
        workloads = ",".join(dict.fromkeys(w for w, _ in pairs))
        modes = ",".join(dict.fromkeys(m for _, m in pairs))
    try:
        seed_list = tuple(int(s) for s in _csv(seeds, "seeds"))
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers, not {seeds!r}") from None
    for m in _csv(modes, "modes"):
        if m not in MODES:
            raise InputError(f"--modes: unknown mode {m!r}; known: {', '.join(MODES)}")
    for a in _csv(agents, "agents"):
        if a not in AGENT_NAMES:
            raise InputError(f"--agents: unknown agent {a!r}; known: {', '.join(AGENT_NAMES)}")
    spec = CampaignSpec(workloads=_csv(workloads, "workloads"), nodes=_csv(nodes, "nodes"),
                        modes=_csv(modes, "modes"), agents=_csv(agents, "agents"),
                        seeds=seed_list, budget=budget, pairs=pairs)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    n_runs = len(spec.configs())
    # Bad names and --jobs fail here, before the progress bar draws anything: the error
    # must be the only line on stderr (run_campaign checks them again).
    if isinstance(jobs, bool) or jobs < 1:
        raise InputError(f"--jobs must be a positive integer, not {jobs!r}")
    for wl, nd in sorted({(c.workload, c.node) for c in spec.configs()}):
        p = Problem(workload=wl, node=nd)
        p.tech, p.model  # noqa: B018
    console = _console()
    with _progress(console) as bar:
        task = bar.add_task(f"campaign ({jobs} jobs)", total=n_runs, best="-")

        def done(row: dict[str, Any]) -> None:
            bar.update(task, advance=1, best=f"{row['agent']} {row['node']}: {row['best_reward']:.3f}")

        rows = run_campaign(spec, out, jobs=jobs, storage_url=storage, resume=resume, on_done=done,
                            backend=backend, address=address)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo((out / "summary.md").read_text())
    for mode in spec.modes:
        typer.echo(formula_text(mode))
