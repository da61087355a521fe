"""Campaigns: workloads x nodes x modes x agents x seeds, run in parallel processes or on Ray.

Each run is an ordinary :func:`explorer.run.run_search` in its own directory
``<out>/runs/<workload>_<node>_<mode>_<agent>_s<seed>/`` (design.json, ppa.json, curves,
checkpoint, and ``results.sqlite`` unless one shared ``--storage`` URL is given). Runs
execute in a process pool (spawned, so each has a clean interpreter); a campaign started
again with ``resume`` reuses finished runs and resumes interrupted ones. The summary
(``summary.md`` and ``summary.csv``) is shaped like the source paper's per-node tables:
for each workload / mode / agent one row per node with the picked design of the best
seed: mesh size, tile classes (FETCH/VLEN/DMEM/WMEM), tokens/s, mW, mm^2, energy per
token, the limiting bounds and feasibility.

Backends: ``local`` (a spawned process pool of ``jobs`` workers) or ``ray`` (one Ray task
per run, ``num_cpus=1``; a local Ray of ``jobs`` CPUs when no address is given, else the
cluster at ``address``). A run's result depends only on its configuration, so both
backends give identical results for the same seeds (tests/test_ray_campaign.py). On a
cluster, ``out`` must be a path every node can write (a shared filesystem) and a server
``--storage`` URL keeps all evaluations in one database.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import multiprocessing
import os
import re
import signal
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from .errors import InputError
from .ppa.problem import Problem
from .results import pick_design, summarize_run, write_outputs
from .run import RunConfig, atomic_write_bytes, run_search
from .storage import Storage, sqlite_url

__all__ = ["BACKENDS", "CampaignSpec", "RunJob", "run_one", "run_campaign", "summary_tables"]

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class CampaignSpec:
    """The cross product to run."""

    workloads: tuple[str, ...]
    nodes: tuple[str, ...]
    modes: tuple[str, ...]
    agents: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int
    hyperparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per agent
    #: If set, (workload, mode) pairs replace the workloads x modes product, e.g. the
    #: paper's campaign: Llama 3.1 8B in performance mode and SmolVLM in low-power mode.
    pairs: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        for name in ("workloads", "nodes", "modes", "agents", "seeds"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not v:
                raise InputError(f"campaign needs at least one of --{name}")
            if len(set(v)) != len(v):
                raise InputError(f"--{name} lists a value twice")
        if self.pairs is not None:
            if not isinstance(self.pairs, tuple) or not self.pairs or not all(
                    isinstance(p, tuple) and len(p) == 2 for p in self.pairs):
                raise InputError("--problems must list workload=mode pairs")
            if len(set(self.pairs)) != len(self.pairs):
                raise InputError("--problems lists a pair twice")

    def problems(self) -> list[tuple[str, str]]:
        """The (workload, mode) pairs to run."""
        if self.pairs is not None:
            return list(self.pairs)
        return list(product(self.workloads, self.modes))

    def configs(self) -> list[RunConfig]:
        return [RunConfig(workload=w, node=n, mode=m, agent=a, budget=self.budget, seed=s,
                          hyperparams=dict(self.hyperparams.get(a, {})))
                for (w, m), n, a, s in product(self.problems(), self.nodes, self.agents,
                                               self.seeds)]


def _workload_tag(workload: str) -> str:
    """A directory-safe name: a model file's stem, a built-in name as it is.

    (``Path("llama3.1-8b").stem`` would be ``llama3``: built-in names keep their dots.)
    """
    if Path(workload).suffix.lower() in (".json", ".onnx") or "/" in workload or os.sep in workload:
        path = Path(workload)       # a Hugging Face config.json is named by its folder
        workload = path.parent.name if path.stem == "config" and path.parent.name else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", workload)


def run_dir_name(c: RunConfig) -> str:
    return f"{_workload_tag(c.workload)}_{c.node}_{c.mode}_{c.agent}_s{c.seed}"


@dataclass(frozen=True)
class RunJob:
    """One run of a campaign, as sent to a worker process."""

    config: RunConfig
    out: str
    storage_url: str | None
    resume: bool


def run_one(job: RunJob) -> dict[str, Any]:
    """Run (or reuse / resume) one campaign run and return its summary row data."""
    out = Path(job.out)
    url = job.storage_url or sqlite_url(out / "results.sqlite")
    out.mkdir(parents=True, exist_ok=True)
    storage = Storage(url)
    try:
        name = str(out.resolve())
        record = storage.find_run(name)
        if record is None or record.status != "finished":
            run_search(job.config, storage, name, out / "checkpoint.pkl", resume=job.resume)
        record = storage.find_run(name)
        assert record is not None
        summary = summarize_run(record, storage.evaluations(record.id))
        c = job.config
        problem = Problem(workload=c.workload, node=c.node, seq_len=c.seq_len, batch=c.batch,
                          kv_len=c.kv_len)
        write_outputs(out, summary, problem)
        design = pick_design(summary, problem)
    finally:
        storage.close()
    row = summary.rows[summary.pick_episode]
    mesh = design.mesh
    counts = mesh.class_counts()
    return {
        "workload": c.workload, "node": c.node, "mode": c.mode, "agent": c.agent, "seed": c.seed,
        "out": str(out), "evaluations": len(summary.rows), "best_reward": summary.best_reward,
        "pick_reward": row["reward"], "pick_method": summary.pick_method,
        "mesh": f"{mesh.rows}x{mesh.cols}", "tiles": mesh.n_tiles,
        "classes": "; ".join(f"{n}x F{t.fetch}/V{t.vlen}/D{t.dmem_kib}/W{t.wmem_kib}{t.wmem_kind[0]}"
                             for t, n in zip(mesh.tile_classes, counts, strict=True)),
        "weights": design.memory.weights,
        "offchip": "-" if design.memory.offchip is None
        else f"{design.memory.channels}x {design.memory.offchip}",
        "clock_mhz": design.clock_mhz, "vdd_v": design.vdd_v,
        "decode_tokens_per_s": row["decode_tokens_per_s"],
        "prefill_tokens_per_s": row["prefill_tokens_per_s"],
        "power_mw": row["power_mw"], "area_mm2": row["area_mm2"],
        "energy_pj_per_token": row["energy_pj_per_token"],
        "bound": "/".join(f"{k}:{v}" for k, v in sorted(row["ppa"]["bound"].items())),
        "feasible": row["feasible"], "admissible": row["admissible"],
    }


def run_campaign(spec: CampaignSpec, out: Path, *, jobs: int = 2, storage_url: str | None = None,
                 resume: bool = False,
                 on_done: Callable[[dict[str, Any]], None] | None = None,
                 backend: str = "local", address: str | None = None) -> list[dict[str, Any]]:
    """Run every configuration of ``spec`` on ``backend``; write the summary.

    ``jobs`` is the number of worker processes (local) or the CPUs of the local Ray started
    when ``address`` is None (ray). ``address`` is only for the ray backend.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs must be a positive integer, not {jobs!r}")
    if backend not in BACKENDS:
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if address is not None and backend != "ray":
        raise InputError("--address needs --backend ray")
    configs = spec.configs()
    for wl, node in sorted({(c.workload, c.node) for c in configs}):
        p = Problem(workload=wl, node=node)   # fail fast on bad names before spawning anything
        p.tech, p.tables  # noqa: B018
    out = Path(out).resolve()      # Ray workers may run elsewhere: no relative paths
    jobs_list = [RunJob(c, str(out / "runs" / run_dir_name(c)), storage_url, resume) for c in configs]
    if storage_url is not None:    # create the tables once, before workers race to do it
        Storage(storage_url).close()
    run = _run_ray if backend == "ray" else _run_local
    results = run(jobs_list, jobs, address, on_done)
    order = {run_dir_name(c): i for i, c in enumerate(configs)}
    results.sort(key=lambda r: order[Path(r["out"]).name])
    md, table_csv = summary_tables(results)
    atomic_write_bytes(out / "summary.md", md.encode())
    atomic_write_bytes(out / "summary.csv", table_csv.encode())
    return results


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to SIGKILL this worker when the campaign
    process dies (e.g. ``kill -9``). An orphaned worker would keep writing its run while a
    ``--resume`` started meanwhile writes the same run."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:           # the parent died before prctl took effect
            os._exit(1)


def _run_local(jobs_list: list[RunJob], jobs: int, _address: str | None,
               on_done: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                                initializer=_die_with_parent) as pool:
        futures = {pool.submit(run_one, j): j for j in jobs_list}
        for fut in cf.as_completed(futures):
            row = fut.result()
            results.append(row)
            if on_done is not None:
                on_done(row)
    return results


def _run_ray(jobs_list: list[RunJob], jobs: int, address: str | None,
             on_done: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    try:
        import ray
    except ModuleNotFoundError:
        raise InputError("--backend ray needs Ray: pip install 'llm2silicon[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            if address is None:    # a private local Ray with `jobs` CPUs, torn down at the end
                ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError(f"cannot connect to Ray at {address or 'a new local instance'}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        pending = [task.remote(j) for j in jobs_list]
        results: list[dict[str, Any]] = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                row = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:   # bad input inside a run: one line
                if isinstance(e.cause, InputError):
                    raise InputError(str(e.cause)) from None
                raise
            results.append(row)
            if on_done is not None:
                on_done(row)
        return results
    finally:
        if started:
            ray.shutdown()


_COLUMNS = ("node", "seeds", "median best reward", "pick reward", "mesh", "tile classes",
            "weights", "off-chip", "decode tok/s", "prefill tok/s", "mW", "mm²", "pJ/token",
            "bound", "feasible", "admissible")


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.4g}" if abs(x) < 1e6 else f"{x:.3e}"
    return str(x)


def summary_tables(results: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(Markdown, CSV) summary: per workload/mode/agent, one row per node (best seed's pick)."""
    groups: dict[tuple[str, str, str], dict[str, list[Mapping[str, Any]]]] = {}
    for r in results:
        groups.setdefault((r["workload"], r["mode"], r["agent"]), {}).setdefault(r["node"], []).append(r)
    md = ["# Campaign summary", ""]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["workload", "mode", "agent", *_COLUMNS])
    for (wl, mode, agent), by_node in groups.items():
        md += [f"## {wl}, {mode} mode, agent {agent}", "",
               "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
        for node, runs in by_node.items():
            best = max(runs, key=lambda r: (r["pick_reward"], -r["seed"]))
            cells = [node, len(runs), statistics.median(r["best_reward"] for r in runs),
                     best["pick_reward"], f"{best['mesh']} ({best['tiles']})", best["classes"],
                     best["weights"], best["offchip"], best["decode_tokens_per_s"],
                     best["prefill_tokens_per_s"], best["power_mw"], best["area_mm2"],
                     best["energy_pj_per_token"], best["bound"], best["feasible"], best["admissible"]]
            md.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
            w.writerow([wl, mode, agent, *cells])
        md.append("")
    return "\n".join(md), out.getvalue()
