"""Everything a run report shows, gathered from a run directory (missing parts are None)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["RunData", "collect", "model_breakdown", "assumption_rows"]


@dataclass(frozen=True)
class RunData:
    """The contents of one run directory, each part None when its stage did not run."""

    run_dir: Path
    design: Any | None            # explorer.design.Design
    ppa: Mapping[str, Any] | None
    synth: Mapping[str, Any] | None
    verify: Mapping[str, Any] | None
    flow: Mapping[str, Any] | None
    curve_png: bytes | None
    pareto_png: bytes | None
    model: Mapping[str, Any] | None   # model_breakdown() of the design, or None
    model_error: str | None


def _json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def model_breakdown(design: Any, workload: str, *, seq_len: int = 2048, batch: int = 1,
                    kv_len: int = 2048) -> dict[str, Any]:
    """The PPA model's per-tile utilisation and per-op-kind latency of ``design``.

    Utilisation of a tile in a phase = cycles its group is busy per execution of the
    phase / the phase's period (decode and encode: the sum of all stages, one batch in
    flight; prefill: the slowest stage or the off-chip floor). Latency by op kind = sum
    over groups of op count x cycles per op (compute, NoC or off-chip bound, whichever is
    longer), the rest of each stage (barriers, all-gather rounds, transfers between
    stages) reported as ``sync/transfer``.
    """
    from ..placement import default_placement
    from ..ppa.problem import Problem, summarize
    from ..workloads import OP_KINDS

    problem = Problem(workload=workload, node=design.node, seq_len=seq_len, batch=batch,
                      kv_len=kv_len)
    result = problem.evaluate([design])
    tables = problem.tables
    placement = design.placement or default_placement(
        tables, design.mesh, weights_on_die=design.memory.weights == "on_die")
    f_hz = design.clock_mhz * 1e6
    phases: dict[str, Any] = {}
    for name, ph in result.phases.items():
        pt = tables.phases[name]
        g_cycles = np.asarray(ph.group_cycles[0], float)
        period = pt.tokens * f_hz / max(float(ph.tokens_per_s[0]), 1e-30)
        util = np.full((design.mesh.rows, design.mesh.cols), np.nan)
        for gi, grp in enumerate(placement.groups):
            for r, c in grp.tiles:
                util[r, c] = min(g_cycles[gi] / period, 1.0) if gi < len(g_cycles) else 0.0
        by_kind: dict[str, float] = {}
        if ph.op_counts is not None and ph.op_busy_cycles is not None:
            work = np.asarray(ph.op_counts[0], float) * np.asarray(ph.op_busy_cycles[0], float)
            per_u = work.sum(0)
            for u, k in enumerate(pt.u_kind):
                kind = OP_KINDS[int(k)]
                by_kind[kind] = by_kind.get(kind, 0.0) + float(per_u[u]) / f_hz
            rest = float(g_cycles.sum() - work.sum()) / f_hz
            by_kind["sync/transfer"] = max(rest, 0.0)
        rate = float(ph.tokens_per_s[0]) / pt.tokens          # executions per second
        power_mw = {k: float(v[0]) * 1e-12 * rate * 1e3 for k, v in ph.energy_breakdown_pj.items()}
        phases[name] = {"utilisation": util.tolist(), "latency_by_kind_s": by_kind,
                        "period_cycles": period, "dynamic_power_mw": power_mw,
                        "groups": len(placement.groups)}
    summary = summarize(result)
    return {"phases": phases, "summary": summary,
            "tile_class": [list(row) for row in design.mesh.class_grid]}


def assumption_rows(node: str, offchip: str | None) -> list[dict[str, str]]:
    """Every assumption of a report with its source: the model's, then the node data."""
    from ..ppa.model import ASSUMPTIONS
    from ..tech import load_node, load_offchip
    from ..tech.node import CONSTANT_SOURCES, OFFCHIP_FIGURES, TECH_FIGURES

    rows = [{"what": a, "value": "", "status": "model",
             "source": "explorer/ppa/model.py (ASSUMPTIONS; llm2silicon evaluate --assumptions)"}
            for a in ASSUMPTIONS]
    tech = load_node(node)
    for name in TECH_FIGURES:
        s = tech.sources.get(name)
        rows.append({"what": f"{tech.name}: {name}", "value": f"{getattr(tech, name):g}",
                     "status": s.status if s else "", "source": _source_text(s)})
    if offchip:
        mem = load_offchip(offchip)
        for name in OFFCHIP_FIGURES:
            s = mem.sources.get(name)
            v = getattr(mem, name)
            rows.append({"what": f"{mem.name}: {name}",
                         "value": f"{v:g}" if isinstance(v, (int, float)) else str(v),
                         "status": s.status if s else "", "source": _source_text(s)})
    for name, s in CONSTANT_SOURCES.items():
        rows.append({"what": name, "value": "", "status": s.status, "source": _source_text(s)})
    return rows


def _source_text(s: Any) -> str:
    if s is None:
        return "(no source recorded)"
    parts = [s.ref]
    if s.note:
        parts.append(s.note)
    if s.url:
        parts.append(s.url)
    return " | ".join(parts)


def collect(run_dir: str | Path) -> RunData:
    """Read a run directory; raises InputError when it is not a directory or holds no run."""
    from ..design import Design

    d = Path(run_dir)
    if not d.is_dir():
        raise InputError(f"{d} is not a run directory")
    design = Design.from_json(d / "design.json") if (d / "design.json").exists() else None
    ppa, synth, verify, flow = (_json(d / n) for n in ("ppa.json", "synth.json", "verify.json",
                                                        "flow.json"))
    if design is None and ppa is None and flow is None:
        raise InputError(f"{d} holds no run (no design.json, ppa.json or flow.json)")
    model, model_error = None, None
    if design is not None and ppa is not None:
        run = ppa.get("run", {})
        try:
            model = model_breakdown(design, run["workload"], seq_len=run.get("seq_len", 2048),
                                    batch=run.get("batch", 1), kv_len=run.get("kv_len", 2048))
        except (InputError, KeyError, ValueError) as e:
            model_error = f"{type(e).__name__}: {e}"
    return RunData(run_dir=d, design=design, ppa=ppa, synth=synth, verify=verify, flow=flow,
                   curve_png=_bytes(d / "curve.png"), pareto_png=_bytes(d / "pareto.png"),
                   model=model, model_error=model_error)
