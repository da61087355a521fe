"""What a stored run produced: the final pick, learning curve, Pareto front, output files.

Everything here is derived from the results database alone, so an interrupted and
resumed run writes the same files as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .design import Design
from .env import space_context
from .pareto import ParetoPoint, pareto_front, select
from .ppa.model import ASSUMPTIONS
from .ppa.problem import Problem
from .reward import MODES, formula_text
from .space import Choices, decode
from .storage import RunRecord

__all__ = ["RunSummary", "summarize_run", "pick_design", "write_outputs", "choices_from_dict",
           "design_name"]


@dataclass(frozen=True)
class RunSummary:
    """The final pick and the statistics of one run."""

    run: RunRecord
    rows: Sequence[Mapping[str, Any]]
    best_episode: int             # highest reward (earliest on ties)
    pick_episode: int             # the paper's Pareto pick, or best_episode if none admissible
    pick_method: str
    front: Sequence[ParetoPoint]

    @property
    def best_reward(self) -> float:
        return float(self.rows[self.best_episode]["reward"])

    def curve(self) -> np.ndarray:
        """Best-so-far reward after each evaluation."""
        return np.maximum.accumulate(np.array([r["reward"] for r in self.rows], float))


def choices_from_dict(d: Mapping[str, Any]) -> Choices:
    """The finished :class:`Choices` stored in a row (``Choices.to_dict`` inverted)."""
    from .space import STAGES

    return Choices(rows=d["rows"], cols=d["cols"], flit_bits=d["flit_bits"], weights=d["weights"],
                   classes=d["classes"], layout=d["layout"], shares=tuple(d["shares"]),
                   tiles=tuple(dict(t) for t in d["tiles"]), offchip=d["offchip"], vdd_v=d["vdd_v"],
                   channels=d["channels"], groups=d["groups"], mix=d["mix"], stage=len(STAGES))


def summarize_run(run: RunRecord, rows: Sequence[Mapping[str, Any]]) -> RunSummary:
    """Best design, Pareto front and pick of ``rows`` (all evaluations, episode order)."""
    if not rows:
        raise ValueError(f"run {run.name!r} has no evaluations")
    rewards = np.array([r["reward"] for r in rows], float)
    best = int(np.argmax(rewards))
    points = [ParetoPoint(r["episode"], r["perf_n"], r["power_n"], r["area_n"])
              for r in rows if r["admissible"]]
    front = pareto_front(points)
    if front:
        pick, method = select(front, MODES[run.mode].weights).episode, "pareto"
    else:
        pick, method = best, "best reward (no admissible design)"
    return RunSummary(run, rows, best, pick, method, front)


def design_name(run: RunRecord, episode: int) -> str:
    return f"{run.workload}_{run.node}_{run.mode}_{run.agent}_s{run.seed}_e{episode}".replace("/", "_")


def pick_design(summary: RunSummary, problem: Problem) -> Design:
    """The picked design (placement included), rebuilt from its stored choices."""
    ctx = space_context(problem, summary.run.mode)
    row = summary.rows[summary.pick_episode]
    return decode(choices_from_dict(row["choices"]), ctx, name=design_name(summary.run, row["episode"]))


def _atomic_text(path: Path, text: str) -> None:
    from .run import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def _atomic_png(path: Path, fig: Figure) -> None:
    from .run import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())


def ppa_report(summary: RunSummary) -> dict[str, Any]:
    """Contents of ``ppa.json``: the pick's PPA, its reward terms and the run's metadata."""
    run = summary.run
    row = summary.rows[summary.pick_episode]
    return {
        "design": design_name(run, row["episode"]),
        "run": {k: getattr(run, k) for k in ("name", "agent", "seed", "budget", "workload", "node",
                                             "mode", "seq_len", "batch", "kv_len", "git_revision",
                                             "started_at", "finished_at")}
               | {"hyperparams": json.loads(run.hyperparams)},
        "pick": {"episode": row["episode"], "method": summary.pick_method,
                 "pareto_front_size": len(summary.front)},
        "best": {"episode": summary.best_episode, "reward": summary.best_reward},
        "evaluations": len(summary.rows),
        "reward": row["reward"], "terms": row["terms"],
        "feasible": row["feasible"], "admissible": row["admissible"],
        "ppa": row["ppa"],
        "reward_formula": formula_text(run.mode).splitlines(),
        "assumptions": list(ASSUMPTIONS),
    }


def curve_csv(summary: RunSummary) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["episode", "reward", "best_so_far", "feasible", "admissible", "perf_n", "power_n",
                "area_n", "power_mw", "area_mm2", "decode_tokens_per_s", "prefill_tokens_per_s"])
    best = -math.inf
    for r in summary.rows:
        best = max(best, r["reward"])
        w.writerow([r["episode"], f"{r['reward']:.9g}", f"{best:.9g}", int(r["feasible"]),
                    int(r["admissible"]), f"{r['perf_n']:.6g}", f"{r['power_n']:.6g}",
                    f"{r['area_n']:.6g}", f"{r['power_mw']:.6g}", f"{r['area_mm2']:.6g}",
                    "" if r["decode_tokens_per_s"] is None else f"{r['decode_tokens_per_s']:.6g}",
                    "" if r["prefill_tokens_per_s"] is None else f"{r['prefill_tokens_per_s']:.6g}"])
    return out.getvalue()


def curve_figure(summary: RunSummary) -> Figure:
    run = summary.run
    r = np.array([x["reward"] for x in summary.rows], float)
    ep = np.arange(len(r))
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.scatter(ep, np.maximum(r, np.percentile(r, 2)), s=3, alpha=0.3, color="tab:gray",
               label="reward (clipped at the 2nd percentile)")
    ax.plot(ep, summary.curve(), color="tab:blue", label="best so far")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("reward")
    ax.set_title(f"{run.agent}, seed {run.seed}: {run.workload} / {run.node} / {run.mode}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def pareto_figure(summary: RunSummary) -> Figure:
    run = summary.run
    rows = summary.rows
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    adm = [r for r in rows if r["admissible"]]
    other = [r for r in rows if r["feasible"] and not r["admissible"]]
    for group, color, label in ((other, "tab:gray", "feasible, over budget/target"),
                                (adm, "tab:blue", "admissible")):
        if group:
            ax.scatter([r["power_mw"] for r in group], [r["perf_n"] for r in group], s=6,
                       alpha=0.4, color=color, label=label)
    front = {p.episode for p in summary.front}
    f_rows = sorted((r for r in rows if r["episode"] in front), key=lambda r: r["power_mw"])
    if f_rows:
        ax.scatter([r["power_mw"] for r in f_rows], [r["perf_n"] for r in f_rows], s=22,
                   color="tab:orange", label="Pareto front (perf, power, area)")
    pick = rows[summary.pick_episode]
    ax.scatter([pick["power_mw"]], [pick["perf_n"]], s=90, marker="*", color="tab:red",
               label=f"pick ({summary.pick_method})")
    ax.set_xscale("log")
    ax.set_xlabel("power (mW)")
    ax.set_ylabel("Perf_n (log-normalised tokens/s)")
    ax.set_title(f"{run.workload} / {run.node} / {run.mode} ({run.agent}, seed {run.seed})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def write_outputs(out: Path, summary: RunSummary, problem: Problem) -> dict[str, Path]:
    """Write design.json, ppa.json, curve.csv/.png and pareto.png atomically into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in (("design", "design.json"), ("ppa", "ppa.json"),
                                    ("curve_csv", "curve.csv"), ("curve_png", "curve.png"),
                                    ("pareto_png", "pareto.png"))}
    _atomic_text(paths["design"], pick_design(summary, problem).to_json())
    _atomic_text(paths["ppa"], json.dumps(ppa_report(summary), indent=2) + "\n")
    _atomic_text(paths["curve_csv"], curve_csv(summary))
    _atomic_png(paths["curve_png"], curve_figure(summary))
    _atomic_png(paths["pareto_png"], pareto_figure(summary))
    return paths
