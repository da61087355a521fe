"""The run report as one self-contained HTML page (inline CSS and SVG, PNGs as data URIs)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from .data import RunData, assumption_rows
from .figures import CLASS_COLORS, bar_png, floorplan_svg, png_data_uri

__all__ = ["render_html", "fmt"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:2px solid #ddd;
padding-bottom:3px;margin-top:30px}h3{font-size:15px;margin-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.notrun{color:#a33;font-style:italic}.ok{color:#170}.bad{color:#b00;font-weight:bold}
pre{background:#f6f8fa;padding:10px;font-size:12px;overflow-x:auto;white-space:pre-wrap}
.meta{color:#555;font-size:13px}.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
img{max-width:100%}.row img{max-width:49%}.small{font-size:12px;color:#555}
"""


def fmt(x: Any) -> str:
    """A number as the report prints it: 4 significant digits, or whole units with thousands
    separators from 10,000 up (below 1e15)."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-" if math.isnan(x) else str(x)
        if 1e4 <= abs(x) < 1e15:          # whole units, thousands separated
            return f"{x:,.0f}"
        return f"{x:,.4g}"
    return str(x)


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str = "") -> str:
    out = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td class="n">{_e(fmt(v))}</td>' if num else f"<td>{_e(fmt(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _not_run(stage: str, why: str = "") -> str:
    return f'<p class="notrun">{_e(stage)}: not run{(" (" + _e(why) + ")") if why else ""}.</p>'


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{png_data_uri(png)}">'


def _stage_why(data: RunData, stage: str) -> str:
    rec = (data.flow or {}).get("stages", {}).get(stage, {})
    return rec.get("message", "") if rec.get("status") != "done" else ""


def _header(data: RunData) -> str:
    ppa = data.ppa or {}
    run = ppa.get("run", {})
    name = ppa.get("design") or (data.design.name if data.design else data.run_dir.name)
    facts = [f"workload <b>{_e(run.get('workload', '?'))}</b>", f"node <b>{_e(run.get('node', '?'))}</b>",
             f"mode <b>{_e(run.get('mode', '?'))}</b>", f"agent {_e(run.get('agent', '?'))}",
             f"budget {_e(fmt(run.get('budget')))} evaluations", f"seed {_e(run.get('seed', '?'))}",
             f"source revision {_e(str(run.get('git_revision', '?'))[:12])}"]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<h1>llm2silicon run report: {_e(name)}</h1>"
            f'<p class="meta">{" · ".join(facts)}<br>run directory {_e(data.run_dir)} · '
            f"report written {now}</p>")


def _stages(data: RunData) -> str:
    from ..flow import STAGES

    stages = (data.flow or {}).get("stages")
    if not stages:
        present = {"explore": data.ppa is not None, "generate": (data.run_dir / "hw").is_dir(),
                   "synth": data.synth is not None, "verify": data.verify is not None,
                   "report": True}
        rows = [(s, "done" if present[s] else "not run", "-", "") for s in STAGES]
        return "<h2>Flow</h2><p class=small>No flow.json: stages inferred from the files.</p>" \
            + _table(("stage", "status", "seconds", "note"), rows)
    rows = []
    for s in STAGES:
        r = stages.get(s, {})
        if s == "report" and r.get("status") != "done":     # the flow is writing this page
            r = {"status": "running", "message": "writing this page"}
        rows.append((s, r.get("status", "not run") + (" (reused)" if r.get("reused") else ""),
                     r.get("seconds") if r.get("seconds") is not None else "-", r.get("message", "")))
    sec = {s: stages.get(s, {}).get("seconds") or 0.0 for s in STAGES}
    wall = sec["explore"] + sec["generate"] + max(sec["synth"], sec["verify"]) + sec["report"]
    return ("<h2>Flow</h2>" + _table(("stage", "status", "seconds", "note"), rows)
            + "<p class=small>Wall time of each stage, from the run that produced its output; "
              "synth and verify run side by side, so the flow took explore + generate + "
              f"max(synth, verify) + report = {fmt(wall)} s.</p>")


def _design(data: RunData) -> str:
    d = data.design
    if d is None:
        return "<h2>Design</h2>" + _not_run("explore", _stage_why(data, "explore"))
    m = d.mesh
    counts = m.class_counts()
    rows = [(f"C{k}", counts[k], t.fetch, t.vlen, t.vlen // 16, t.stations, t.xdp, t.vdp,
             t.xr_wp, t.vr_wp, t.dmem_kib, t.imem_kib, t.wmem_kib, t.wmem_kind)
            for k, t in enumerate(m.tile_classes)]
    mem = d.memory
    vdd = "nominal" if d.vdd_v is None else f"{d.vdd_v:g} V"
    return ("<h2>Design</h2>"
            f"<p>{m.rows} x {m.cols} mesh = {m.n_tiles} tiles in {len(m.tile_classes)} class(es), "
            f"NoC flits of {m.flit_bits} bits, clock {fmt(d.clock_mhz)} MHz at {vdd}; weights "
            f"{_e(mem.weights.replace('_', ' '))}, off-chip memory "
            f"{_e(mem.offchip or 'none')}{'' if mem.offchip is None else f' x {mem.channels} channel(s)'}.</p>"
            + _table(("class", "tiles", "fetch", "vlen bits", "FP16 lanes", "stations", "scalar disp.",
                      "vector disp.", "scalar WP", "vector WP", "DMEM KiB", "IMEM KiB", "WMEM KiB",
                      "WMEM"), rows))


def _headline(data: RunData) -> str:
    if data.ppa is None:
        return "<h2>Performance, power, area</h2>" + _not_run("explore", _stage_why(data, "explore"))
    p = data.ppa["ppa"]
    rows = []
    for name, ph in p.get("phases", {}).items():
        rows.append((f"{name} tokens/s", ph["tokens_per_s"], f"limited by {ph['bound']}"))
        rows.append((f"{name} latency of one execution (s)", ph["latency_s"], ""))
        rows.append((f"{name} power (mW)", ph["power_mw"], "dynamic + clock + leakage"))
        rows.append((f"{name} energy (pJ/token)", ph["energy_pj_per_token"], ""))
    rows += [("power (mW)", p["power_mw"], "highest phase power, memory devices included"),
             ("die power (mW)", p["die_power_mw"], "without the off-chip memory devices"),
             ("area (mm2)", p["area_mm2"], "die, incl. overhead and PHYs"),
             ("peak FLOP/s", p["peak_flops_per_s"], ""),
             ("off-chip bandwidth (B/s)", p["offchip_bytes_per_s"], ""),
             ("fmax at this Vdd (MHz)", p["fmax_mhz"], ""),
             ("feasible", p["feasible"], "; ".join(p.get("violations", [])) or "no violation"),
             ("admissible", data.ppa.get("admissible"), "feasible, within budget, meets target"),
             ("reward", data.ppa.get("reward"), f"pick: {data.ppa['pick']['method']}")]
    return ("<h2>Performance, power, area (analytical model)</h2>"
            + _table(("figure", "value", "note"), rows, cls="headline"))


def _floorplan(data: RunData) -> str:
    if data.model is None:
        why = data.model_error or _stage_why(data, "explore")
        return "<h2>Floorplan</h2>" + _not_run("explore", why)
    svgs = [floorplan_svg(data.model["tile_class"], ph["utilisation"],
                          f"{name}: utilisation per tile")
            for name, ph in data.model["phases"].items()]
    legend = " ".join(f'<span style="border:3px solid {CLASS_COLORS[k % 10]};padding:0 4px">C{k}</span>'
                      for k in range(len(data.design.mesh.tile_classes)))
    return ("<h2>Floorplan: tile classes and utilisation</h2>"
            f"<p class=small>Outline = tile class ({legend}); fill = fraction of the phase's period "
            "the tile's group is busy (PPA model: its ops' cycles, barriers and transfers); grey = "
            "no op placed on the tile.</p>" f'<div class="row">{"".join(svgs)}</div>')


def _breakdowns(data: RunData) -> str:
    if data.ppa is None or data.model is None:
        return "<h2>PPA breakdowns</h2>" + _not_run("explore", data.model_error or "")
    p = data.ppa["ppa"]
    area = p["area_breakdown_mm2"]
    parts = ["<h2>PPA breakdowns</h2><h3>Area (mm2)</h3>",
             '<div class="row">', _table(("part", "mm2"), [(k, v) for k, v in area.items()]
                                       + [("total", p["area_mm2"])]),
             _img(bar_png(area, title="area by part", unit="mm2"), "area by part"), "</div>",
             "<h3>Power by phase (mW)</h3>"]
    static = p.get("power_breakdown_mw", {})
    rows = []
    for name, ph in data.model["phases"].items():
        dyn = ph["dynamic_power_mw"]
        rows.append((name, *(dyn.get(k, 0.0) for k in ("compute", "sram", "control", "noc", "offchip")),
                     static.get("clock", 0.0), static.get("leakage", 0.0),
                     p["phases"][name]["power_mw"]))
    parts.append(_table(("phase", "compute", "SRAM", "control", "NoC", "off-chip", "clock",
                         "leakage", "total"), rows))
    parts.append("<h3>Latency of one execution by op kind (s)</h3>")
    kinds = sorted({k for ph in data.model["phases"].values() for k in ph["latency_by_kind_s"]})
    phases = list(data.model["phases"])
    rows = [(k, *(data.model["phases"][ph]["latency_by_kind_s"].get(k, 0.0) for ph in phases))
            for k in kinds]
    parts.append(_table(("op kind", *phases), rows))
    imgs = [_img(bar_png(data.model["phases"][ph]["latency_by_kind_s"], title=f"{ph}: seconds by op kind",
                         unit="s per execution", log=True), f"{ph} latency by op kind") for ph in phases]
    parts.append(f'<div class="row">{"".join(imgs)}</div>')
    return "".join(parts)


def _search(data: RunData) -> str:
    parts = ["<h2>Search</h2>"]
    if data.curve_png is None and data.pareto_png is None:
        return parts[0] + _not_run("explore", _stage_why(data, "explore"))
    if data.ppa is not None:
        pick = data.ppa["pick"]
        parts.append(f"<p>{fmt(data.ppa['evaluations'])} evaluations; best reward "
                     f"{fmt(data.ppa['best']['reward'])} (episode {data.ppa['best']['episode']}); "
                     f"picked episode {pick['episode']} by {_e(pick['method'])}; Pareto front of "
                     f"{pick['pareto_front_size']} admissible designs.</p>")
    parts.append('<div class="row">')
    if data.curve_png is not None:
        parts.append(_img(data.curve_png, "learning curve"))
    if data.pareto_png is not None:
        parts.append(_img(data.pareto_png, "Pareto front"))
    parts.append("</div>")
    return "".join(parts)


def _shape(shape: Any) -> str:
    if isinstance(shape, dict):
        return " ".join(f"{k}={v}" for k, v in shape.items())
    if isinstance(shape, (list, tuple)):
        return "x".join(str(s) for s in shape)
    return "-" if shape is None else str(shape)


def _fidelity(data: RunData) -> str:
    v = data.verify
    if v is None:
        return "<h2>Fidelity: RTL vs model</h2>" + _not_run("verify", _stage_why(data, "verify"))
    rows = [(p.get("op"), p.get("kind"), _shape(p.get("shape")), p.get("tile", p.get("tile_class")),
             p.get("tiles"), p.get("model_cycles"), p.get("rtl_cycles"), p.get("cycle_error"),
             p.get("functional_pass"), p.get("max_abs_err_vs_float64")) for p in v.get("points", [])]
    ok = v.get("functional_pass")
    cps = v.get("verilator_cycles_per_s", {}) or {}
    return ("<h2>Fidelity: RTL vs model</h2>"
            f'<p>Functional check: <span class="{"ok" if ok else "bad"}">'
            f'{"pass" if ok else "FAIL"}</span>; cycle error (RTL vs model) median '
            f"{fmt(v.get('cycle_error_median'))}, max {fmt(v.get('cycle_error_max'))}; Verilator "
            f"{fmt(cps.get('single_tile'))} cycles/s (one tile), {fmt(cps.get('mesh_2x2'))} (2x2); "
            f"{fmt(v.get('elapsed_s'))} s.</p>"
            + _table(("op", "kind", "shape", "tile", "tiles", "model cycles", "RTL cycles",
                      "cycle error", "results match", "max |err| vs float64"), rows))


def _synthesis(data: RunData) -> str:
    s = data.synth
    if s is None:
        return "<h2>Synthesis (Yosys, generic gates)</h2>" + _not_run("synth", _stage_why(data, "synth"))
    model = _model_tile_nand2(data)
    rows = []
    for t in s.get("tiles", []):
        st, a = t["stats"], t["area"]
        m = model.get(t["label"])
        rows.append((t["module"], t["label"], t["count"], st["cells"], st["flip_flops"],
                     st["nand2_eq"], m, _rel(m, st["nand2_eq"]), a["logic_um2"],
                     st["memory_bits"], a.get("sram_um2", 0.0) + a.get("rom_um2", 0.0)))
    tot = s.get("mesh_total", {})
    if tot:
        ta = tot.get("area", {})
        m_tot = (sum(t["count"] * model[t["label"]] for t in s.get("tiles", []))
                 if all(t["label"] in model for t in s.get("tiles", [])) else None)
        rows.append(("mesh total", "", sum(t["count"] for t in s.get("tiles", [])), tot.get("cells"),
                     tot.get("flip_flops"), tot.get("nand2_eq"), m_tot, _rel(m_tot, tot.get("nand2_eq")),
                     ta.get("logic_um2"), tot.get("memory_bits"),
                     ta.get("sram_um2", 0.0) + ta.get("rom_um2", 0.0)))
    sub = s.get("submesh")
    subtxt = (f"<p>{sub['rows']}x{sub['cols']} sub-mesh flattened and checked: "
              f"{fmt(sub['stats']['cells'])} cells, no combinational loop, no latch.</p>" if sub else "")
    return ("<h2>Synthesis (Yosys, generic gates)</h2>"
            f"<p class=small>{_e(s.get('flow', ''))}; NAND2 area at {_e(s.get('node'))} "
            f"{fmt(s.get('nand2_area_um2'))} um2.</p>"
            "<p class=small>model NAND2-eq: the explorer's area model of the same tile class "
            "(explorer.ppa.area.tile_logic_nand2, fitted to Yosys on the calibration tiles, "
            "docs/area.md); error = model / Yosys - 1.</p>"
            + _table(("module", "tile class", "tiles", "cells", "flip-flops", "NAND2-eq",
                      "model NAND2-eq", "model error", "logic um2", "SRAM/ROM bits",
                      "memory um2"), rows, cls="synth") + subtxt)


def _model_tile_nand2(data: RunData) -> dict[str, float]:
    """The area model's logic NAND2-eq of each tile class of the design, by its label."""
    if data.design is None:
        return {}
    from ..ppa.area import tile_features, tile_logic_nand2
    mesh = data.design.mesh
    out = {}
    for t in mesh.tile_classes:
        f = tile_features(t.vlen, t.fetch, t.stations, t.xdp, t.vdp, t.xr_wp, t.vr_wp, mesh.flit_bits)
        out[str(t)] = float(tile_logic_nand2(f, t.imem_kib, t.fetch))
    return out


def _rel(model: float | None, ref: float | None) -> str | None:
    return None if model is None or not ref else f"{model / ref - 1:+.1%}"


def _reward(data: RunData) -> str:
    from ..reward import formula_text

    if data.ppa is None:
        return "<h2>Reward</h2>" + _not_run("explore")
    mode = data.ppa["run"]["mode"]
    terms = data.ppa.get("terms", {})
    return ("<h2>Reward</h2>" f"<pre>{_e(formula_text(mode))}</pre>"
            + _table(("term", "value"), [(k, v) for k, v in terms.items()]))


def _assumptions(data: RunData) -> str:
    node = data.design.node if data.design else (data.ppa or {}).get("run", {}).get("node")
    if node is None:
        return "<h2>Assumptions</h2>" + _not_run("explore")
    offchip = data.design.memory.offchip if data.design else None
    rows = [(r["what"], r["value"], r["status"], r["source"]) for r in assumption_rows(node, offchip)]
    return ("<h2>Assumptions and sources</h2><p class=small>Model assumptions "
            "(explorer/ppa/model.py), then every figure of the node and memory data the model used "
            "(explorer/tech/nodes.toml): quoted = taken from the source, derived = computed from "
            "it, assumed = no direct source (the note says why).</p>"
            + _table(("assumption / figure", "value", "status", "source"), rows, cls="assumptions"))


_GLOSSARY = (
    ("tokens/s", "tokens produced (decode), prompt tokens consumed (prefill) or image tokens "
                 "encoded (encode) per second at the design's clock; 'limited by' names the term "
                 "(compute, scratchpad, NoC, off-chip) that bounds it."),
    ("power (mW)", "dynamic energy x execution rate + clock-tree power + leakage, for the "
                   "most power-hungry phase; off-chip memory transfer energy included."),
    ("area (mm2)", "tile logic + SRAM/ROM + routers + PHYs + overhead (clock/power/DFT/IO)."),
    ("utilisation", "fraction of the phase's period a tile's group is busy (model)."),
    ("cycle error", "model cycles / RTL cycles - 1 of one mapped operator (Verilator run of the "
                    "generated RTL); median and max are of its absolute value."),
    ("NAND2-eq", "Yosys CMOS transistor count / 4 (generic gates, before a real library)."),
)


def render_html(data: RunData) -> str:
    """The report page of ``data``."""
    body = [_header(data), _stages(data), _design(data), _headline(data), _floorplan(data),
            _breakdowns(data), _search(data), _fidelity(data), _synthesis(data), _reward(data),
            _assumptions(data),
            "<h2>What the numbers mean</h2>" + _table(("figure", "meaning"), _GLOSSARY)]
    title = (data.ppa or {}).get("design") or data.run_dir.name
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>llm2silicon report: {_e(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
