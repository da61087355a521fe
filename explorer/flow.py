"""The whole flow in one call: explore -> generate -> synth -> verify -> report.

Every stage writes its outputs into one run directory (the layout of ``docs/flow.md``)
and is recorded in ``flow.json`` with its status, wall time and a digest of its inputs.
A rerun skips every stage that is done and whose inputs (and outputs) are unchanged, so a
flow interrupted in ``synth`` continues there; ``resume`` continues an interrupted search.
Every file is written atomically (temporary file + rename), so an interrupted stage
never leaves a half-written output, and bad input fails before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["STAGES", "FlowConfig", "check_flow", "check_agent", "FlowObserver", "StageRecord", "FlowResult", "run_flow",
           "read_flow_json", "SKIPPABLE", "DEFAULT_AGENT", "DEFAULT_BUDGET", "FLOW_SCHEMA_VERSION"]

log = logging.getLogger(__name__)

STAGES = ("explore", "generate", "synth", "verify", "report")
FLOW_SCHEMA_VERSION = 1
#: The search of the README's main job: the genetic algorithm evaluates 2,000 designs of
#: smolvlm-256m / 28 nm / low-power in 43 s on 2 cores (SAC-MoE: 300 in 58 s), and it found
#: the best low-power designs of every baseline at that budget (docs/explorer.md §6).
DEFAULT_AGENT = "ga"
DEFAULT_BUDGET = 2000

#: Stages ``--skip`` may leave out (each needs only design.json, so the others still run).
SKIPPABLE = ("generate", "synth", "verify")
SKIPPED = "skipped (--skip)"

#: Outputs of each stage, relative to the run directory (all must exist for a stage to be
#: reused).
STAGE_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "explore": ("design.json", "ppa.json", "curve.csv", "curve.png", "pareto.png",
                "results.sqlite"),
    "generate": ("hw/manifest.json", "hw/filelist.f"),
    "synth": ("synth.json",),
    "verify": ("verify.json",),
    "report": ("report.html",),
}


@dataclass(frozen=True)
class FlowConfig:
    """What one flow run computes (the explore settings plus the back-end options).

    Parameters
    ----------
    workload, node, mode, agent, budget, seed, seq_len, batch, kv_len
        As ``llm2silicon explore``.
    jobs : int
        Processes for RTL conversion and Yosys runs.
    quick_verify : bool
        The flow-sized verification (a few points) instead of the full one.
    """

    workload: str
    node: str
    mode: str = "performance"
    agent: str = DEFAULT_AGENT
    budget: int = DEFAULT_BUDGET
    seed: int = 0
    seq_len: int = 2048
    batch: int = 1
    kv_len: int = 2048
    jobs: int = 2
    quick_verify: bool = True
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise InputError(f"--jobs must be at least 1, not {self.jobs!r}")
        object.__setattr__(self, "skip", tuple(self.skip))
        for s in self.skip:
            if s not in SKIPPABLE:
                raise InputError(f"--skip takes {', '.join(SKIPPABLE)}, not {s!r}")
        object.__setattr__(self, "hyperparams", dict(self.hyperparams))
        self.run_config()          # validates mode, agent, budget, seed and sizes

    def run_config(self):
        from .run import RunConfig

        return RunConfig(workload=self.workload, node=self.node, mode=self.mode, agent=self.agent,
                         budget=self.budget, seed=self.seed, hyperparams=self.hyperparams,
                         seq_len=self.seq_len, batch=self.batch, kv_len=self.kv_len)

    def explore_identity(self) -> dict[str, Any]:
        """What the search depends on (the workload file's bytes when it is a file)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("jobs", "quick_verify", "skip")}
        d["workload_digest"] = _workload_digest(self.workload)
        return d


@dataclass
class StageRecord:
    """One stage in ``flow.json``."""

    status: str = "not run"        # done | failed | not run
    seconds: float | None = None   # wall time of the run that produced the outputs
    inputs: str | None = None      # digest of the stage's inputs
    finished_at: str | None = None
    message: str = ""
    reused: bool = False           # skipped in the latest invocation (inputs unchanged)


@dataclass(frozen=True)
class FlowResult:
    """What :func:`run_flow` did."""

    out: Path
    stages: Mapping[str, StageRecord]
    seconds: float                 # wall time of this invocation

    @property
    def ok(self) -> bool:
        """Every stage done (or skipped on request) and the verification passed."""
        if any(r.status != "done" and r.message != SKIPPED for r in self.stages.values()):
            return False
        verify = _read_json(self.out / "verify.json")
        return bool(verify is None or verify.get("functional_pass", False))


class FlowObserver:
    """Progress callbacks of :func:`run_flow` (the CLI draws them; the default is silent)."""

    def stage_started(self, stage: str, total: int | None) -> None:
        """``stage`` begins; ``total`` steps when known (explore: evaluations)."""

    def stage_progress(self, stage: str, done: int | None, info: str) -> None:
        """Progress inside a stage (``done`` steps, or None) and a short status line."""

    def stage_finished(self, stage: str, record: StageRecord) -> None:
        """``stage`` ended (done, failed, reused or not run)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _workload_digest(workload: str) -> str | None:
    spec = workload.split(":", 1)[0] if ":" in workload and not Path(workload).exists() else workload
    p = Path(spec)
    return _file_digest(p) if p.is_file() else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, doc: Any) -> None:
    from .run import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode())


def read_flow_json(out: Path) -> dict[str, Any] | None:
    """The ``flow.json`` of run directory ``out`` (None when absent or unreadable)."""
    doc = _read_json(Path(out) / "flow.json")
    if not isinstance(doc, dict) or doc.get("schema_version") != FLOW_SCHEMA_VERSION:
        return None
    return doc


class _Flow:
    """One invocation: the records, the observer and ``flow.json`` bookkeeping."""

    def __init__(self, config: FlowConfig, out: Path, observer: FlowObserver) -> None:
        self.config, self.out, self.obs = config, out, observer
        old = read_flow_json(out) or {}
        self.records: dict[str, StageRecord] = {}
        for s in STAGES:
            r = old.get("stages", {}).get(s, {})
            known = {k: r[k] for k in StageRecord.__dataclass_fields__ if k in r}
            self.records[s] = StageRecord(**known)
        self.t0 = time.monotonic()
        self.lock = threading.Lock()       # synth and verify may finish concurrently

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        doc = {"schema_version": FLOW_SCHEMA_VERSION,
               "config": asdict(self.config) | {"hyperparams": dict(self.config.hyperparams)},
               "explore_identity": self.config.explore_identity(),
               "stages": {s: asdict(r) for s, r in self.records.items()},
               "total_seconds": round(sum(r.seconds or 0.0 for r in self.records.values()), 1),
               "last_invocation_seconds": round(time.monotonic() - self.t0, 1),
               "updated_at": _now()}
        _write_json(self.out / "flow.json", doc)

    def reusable(self, stage: str, inputs: str) -> bool:
        r = self.records[stage]
        return (r.status == "done" and r.inputs == inputs
                and all((self.out / p).exists() for p in STAGE_OUTPUTS[stage]))

    def run(self, stage: str, inputs: str, body: Callable[[], str], total: int | None = None) -> bool:
        """Run ``body`` (returns a message) unless reusable; record and save. True if done."""
        if stage in self.config.skip:
            self.skip(stage, SKIPPED)
            return False
        if self.reusable(stage, inputs):
            self.records[stage].reused = True
            self.obs.stage_finished(stage, self.records[stage])
            return True
        self.obs.stage_started(stage, total)
        t = time.monotonic()
        rec = StageRecord(status="failed", inputs=inputs)
        self.records[stage] = rec
        try:
            rec.message = body()
            rec.status = "done"
        except _StageFailed as e:
            rec.message = str(e)
        except _StageSkipped as e:
            rec.status, rec.message, rec.inputs = "not run", str(e), None
        finally:
            rec.seconds = round(time.monotonic() - t, 2)
            rec.finished_at = _now()
            self.save()
            self.obs.stage_finished(stage, rec)
        return rec.status == "done"

    def skip(self, stage: str, why: str) -> None:
        self.records[stage] = StageRecord(status="not run", message=why)
        self.save()
        self.obs.stage_finished(stage, self.records[stage])


class _StageFailed(Exception):
    """A stage ran and failed (synthesis check, simulator error): recorded, flow goes on."""


class _StageSkipped(Exception):
    """A stage could not run here (its tool or module is missing): recorded as not run."""


def _check_out(out: Path, config: FlowConfig, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    old = read_flow_json(out)
    if old is None:
        if (out / "results.sqlite").exists() and not resume:
            raise InputError(f"{out} already holds a search (results.sqlite) but no flow.json; "
                             "pass --resume to continue it or choose another --out")
        return
    if old.get("explore_identity") != config.explore_identity():
        before = old.get("explore_identity", {})
        diff = [k for k in sorted(set(before) | set(config.explore_identity()))
                if before.get(k) != config.explore_identity().get(k)]
        raise InputError(f"{out} holds a flow run with other settings ({', '.join(diff)} differ); "
                         "choose another --out")


def _explore(fl: _Flow, resume: bool) -> str:
    from .ppa.problem import Problem
    from .results import summarize_run, write_outputs
    from .run import run_search
    from .storage import Storage, sqlite_url

    c, out = fl.config, fl.out
    problem = Problem(workload=c.workload, node=c.node, seq_len=c.seq_len, batch=c.batch,
                      kv_len=c.kv_len)
    db = Storage(sqlite_url(out / "results.sqlite"))
    try:
        res = run_search(c.run_config(), db, str(out.resolve()), out / "checkpoint.pkl",
                         resume=resume,
                         progress=lambda done, total, best: fl.obs.stage_progress(
                             "explore", done, f"best reward {best:.4f}"))
        summary = summarize_run(res.run, db.evaluations(res.run.id))
        write_outputs(out, summary, problem)
    finally:
        db.close()
    return (f"{len(summary.rows)} evaluations ({res.evaluated} now, {res.replayed} replayed), "
            f"pick: episode {summary.pick_episode} by {summary.pick_method}")


def _design(out: Path):
    from .design import Design

    return Design.from_json(out / "design.json")


def _generate(fl: _Flow) -> str:
    from hwgen.collateral import generate

    d = _design(fl.out)
    fl.obs.stage_progress("generate", None, f"{d.mesh.rows}x{d.mesh.cols} mesh, "
                          f"{len(d.mesh.tile_classes)} tile class(es)")
    generate(d, fl.out / "hw", jobs=fl.config.jobs)
    manifest = json.loads((fl.out / "hw" / "manifest.json").read_text())
    return f"top {manifest['top']}, {len(manifest['tile_modules'])} tile module(s) in hw/"


def _synth(fl: _Flow) -> str:
    from hwgen.synth import SynthError, synth_design

    d = _design(fl.out)
    try:
        # A 1x1 mesh's 2x2 window is the tile itself, already checked: skip the composition.
        report = synth_design(d, jobs=fl.config.jobs, submesh=d.mesh.n_tiles > 1,
                              progress=lambda msg: fl.obs.stage_progress("synth", None, msg))
    except SynthError as e:
        raise _StageFailed(f"synthesis check failed: {e}") from None
    _write_json(fl.out / "synth.json", report)
    tot = report["mesh_total"]
    return f"{tot['cells']:,} cells, {tot['nand2_eq']:,.0f} NAND2-eq over the mesh"


def _verify(fl: _Flow) -> str:
    try:
        from sim.verify import verify_design
    except ImportError as e:
        raise _StageSkipped(f"sim.verify is not available ({e})") from None
    d = _design(fl.out)
    try:
        report = verify_design(d, fl.config.workload, quick=fl.config.quick_verify,
                               work_dir=fl.out / "sim",
                               progress=lambda msg: fl.obs.stage_progress("verify", None, msg))
    except InputError:
        raise
    except Exception as e:        # a simulator or toolchain failure: record it, go on
        log.exception("verification failed")
        raise _StageFailed(f"verification could not run: {type(e).__name__}: {e}") from None
    _write_json(fl.out / "verify.json", report)
    if not report.get("functional_pass", False):
        raise _StageFailed("RTL results differ from the golden model (see verify.json)")
    return (f"{len(report.get('points', []))} points, cycle error median "
            f"{report.get('cycle_error_median', float('nan')):.3g}")


def _report(fl: _Flow) -> str:
    from .report import build_report

    path = build_report(fl.out)
    return f"{path.name}, {path.stat().st_size / 1024:.0f} KiB"


def check_flow(config: FlowConfig, out: str | Path, *, resume: bool = False) -> None:
    """Raise :class:`InputError` for anything :func:`run_flow` would reject as bad input
    (unknown workload or node, unsupported op, ``out`` holding another run); writes nothing."""
    from .ppa.problem import Problem

    problem = Problem(workload=config.workload, node=config.node, seq_len=config.seq_len,
                      batch=config.batch, kv_len=config.kv_len)
    problem.tech, problem.tables  # noqa: B018  (unknown names fail here, before any output)
    _check_out(Path(out), config, resume)
    check_agent(config.run_config(), problem)


def check_agent(config, problem) -> None:
    """Construct the search agent once so an unknown or mistyped ``--hp`` is an InputError
    before anything is drawn or written (``run_search`` builds its own)."""
    import optuna

    from .agents.base import make_agent
    from .env import AsicDesignEnv

    optuna.logging.set_verbosity(optuna.logging.WARNING)   # as run_search: no study banner
    env = AsicDesignEnv(problem=problem, mode=config.mode)
    try:
        make_agent(config.agent, env, config.seed, budget=config.budget, **config.hyperparams)
    except TypeError as e:
        raise InputError(f"agent {config.agent}: {e}") from None


def run_flow(config: FlowConfig, out: str | Path, *, resume: bool = False,
             observer: FlowObserver | None = None) -> FlowResult:
    """Run the flow of ``config`` into run directory ``out``; see the module docstring.

    Bad input (unknown workload or node, bad settings, a run directory holding another
    run) raises :class:`InputError` before anything is written. A stage that fails
    (synthesis check, simulation) is recorded as failed in ``flow.json``; the stages that
    need its output are not run, the others and the report still are.
    """
    out = Path(out)
    check_flow(config, out, resume=resume)
    # Our own earlier invocation (same settings, checked above): continue its search.
    resume = resume or read_flow_json(out) is not None
    out.mkdir(parents=True, exist_ok=True)
    fl = _Flow(config, out, observer or FlowObserver())
    for r in fl.records.values():
        r.reused = False
    fl.save()

    explored = fl.run("explore", _digest(config.explore_identity()),
                      lambda: _explore(fl, resume), total=config.budget)
    design_digest = _file_digest(out / "design.json") if explored else None
    if design_digest is None:
        for s in ("generate", "synth", "verify"):
            fl.skip(s, "no design (explore did not finish)")
    else:
        fl.run("generate", _digest("generate", design_digest), lambda: _generate(fl))
        ident = config.explore_identity()
        back_end = (
            lambda: fl.run("synth", _digest("synth", design_digest), lambda: _synth(fl)),
            lambda: fl.run("verify", _digest("verify", design_digest, ident["workload"],
                                             ident["workload_digest"], config.quick_verify),
                           lambda: _verify(fl)),
        )
        # Yosys (one process per tile class) and Verilator are separate processes that
        # need neither the other's output: with two or more jobs they share the cores.
        with ThreadPoolExecutor(max_workers=2 if config.jobs >= 2 else 1) as pool:
            for f in [pool.submit(b) for b in back_end]:
                f.result()
    report_inputs = _digest("report", *(_file_digest(out / p) for p in
                                        ("design.json", "ppa.json", "curve.csv", "synth.json",
                                         "verify.json")),
                            {s: (r.status, r.seconds) for s, r in fl.records.items()
                             if s != "report"})
    fl.run("report", report_inputs, lambda: _report(fl))
    fl.save()
    return FlowResult(out=out, stages=dict(fl.records), seconds=time.monotonic() - fl.t0)
