"""Area fidelity: the analytical tile-logic model vs Yosys synthesis of the generated RTL.

``python -m sim.area_fit [--collect] [--json] [--refit]``

* ``--collect`` synthesises (``hwgen.synth.synth_design``, cached by hwgen) every tile
  configuration of :data:`CONFIGS` that ``sim/area_points.json`` lacks and stores its
  Yosys figures with their provenance (Yosys version, hwgen commit and source digest,
  the configuration). Without it only the committed points are used.
* The fit: nonnegative least squares of the linear NAND2-equivalent model of
  :mod:`explorer.ppa.area` (and of its flip-flop model) to the Yosys counts.
* The report, per technology node: R², slope and maximum relative error of the model's
  tile area against the Yosys-derived area of the same tile. Both sides count memories
  the same way: every DMEM/IMEM/WMEM bank is a macro (a black box in Yosys, whose bits
  :func:`collect_points` checks against the model's), priced from the node's bit cell and
  array efficiency; the logic is NAND2-eq x the node's NAND2 area / placement utilisation.
  The logic-only fit is the real test and is node independent (one scale factor).
* ``--refit`` writes the fitted coefficients into ``explorer/ppa/area_model.json`` with
  provenance (date, command, points-file digest, R²).

Identifiability: five features of the model (FP16/INT8 MAC lanes, VALU lanes, reduction
adders, vector-register bits) are all proportional to ``vlen``, so no set of tile
configurations could tell them apart by a fit. hwgen synthesises each shared arithmetic
unit once and places it per lane, so the four lane features take their coefficients
directly from the units' Yosys figures (:data:`LANE_UNITS`, instance counts checked
against the features); ``vreg_bits`` then carries the rest of the vlen-proportional logic
(registers, their read/write multiplexers, operand and pipeline registers), and it and
the remaining features are fitted by nonnegative least squares.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explorer.design import TileConfig
from explorer.ppa import area as A
from explorer.tech import NODE_NAMES, load_node

from .area_points import (
    CONFIGS,
    POINTS_PATH,
    AreaPoint,
    collect_points,
    load_points,
    points_digest,
    synth_point,
)

__all__ = ["CONFIGS", "LANE_UNITS", "LANE_FEATURES", "POINTS_PATH", "MODEL_PATH", "NODES", "AreaPoint",
           "nnls", "prior_coefficients", "points_digest", "features_of", "load_points",
           "collect_points", "synth_point", "lane_unit_coefficients", "fit",
           "evaluate", "cross_validate", "summary", "refit", "main"]

ROOT = Path(__file__).resolve().parents[1]
MODEL_PATH = ROOT / "explorer" / "ppa" / "area_model.json"
NODES = tuple(NODE_NAMES)
#: Features proportional to vlen (not separable by tile configuration): fitted as a group.
#: Shared arithmetic units placed per lane (hwgen.library) -> the model features whose sum
#: is their instance count (checked per point): the FP32 adder serves the FP16 lane's
#: accumulate and the reduction tree's nodes.
LANE_UNITS: dict[str, tuple[str, ...]] = {
    "l2s_fp16_mul_fp32": ("lanes_fp16",), "l2s_fp32_to_fp16": ("lanes_fp16",),
    "l2s_fp32_add": ("lanes_fp16", "reduce_adders"),
    "l2s_int8_mac": ("lanes_int8",), "l2s_int32_to_int8_sat": ("lanes_int8",),
    **{f"l2s_fp16_{op}": ("valu_lanes",) for op in ("add", "mul", "max", "exp", "rcp", "rsqrt")},
}
#: Features whose coefficients are the measured units (the others are fitted).
LANE_FEATURES = ("lanes_fp16", "lanes_int8", "valu_lanes", "reduce_adders")


# --- nonnegative least squares ----------------------------------------------------------


def nnls(a: np.ndarray, b: np.ndarray, *, max_iter: int = 500) -> np.ndarray:
    """argmin ||a x - b||_2 subject to x >= 0 (Lawson & Hanson 1974, "Solving Least
    Squares Problems", ch. 23, algorithm NNLS); scipy is not a dependency here."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.shape[1]
    x, passive = np.zeros(n), np.zeros(n, bool)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(a.shape)
    for _ in range(max_iter):
        w = a.T @ (b - a @ x)
        if passive.all() or (w[~passive] <= tol).all():
            break
        j = np.argmax(np.where(passive, -np.inf, w))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


# --- points -----------------------------------------------------------------------------


def features_of(tiles: Sequence[TileConfig], flit_bits: Sequence[int]) -> np.ndarray:
    """The model's feature matrix (rows = tiles, columns = :data:`AREA_FEATURES`)."""
    cols = [np.array([getattr(t, k) for t in tiles]) for k in
            ("vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp")]
    return A.tile_features(*cols, np.asarray(flit_bits))


# --- fit and evaluation -----------------------------------------------------------------


def lane_unit_coefficients(points: Sequence[AreaPoint]) -> dict[str, dict[str, float]]:
    """Per-lane feature coefficients measured directly: the Yosys figures of the shared
    arithmetic units each lane instantiates (:data:`LANE_UNITS`).

    Raises ValueError when a point's instance counts do not equal the features the table
    maps them to, or when a unit's figures differ between points (the RTL changed)."""
    x = features_of([p.tile for p in points], [p.flit_bits for p in points])
    idx = {f: i for i, f in enumerate(A.AREA_FEATURES)}
    seen: dict[str, tuple[float, int]] = {}
    for p, row in zip(points, x, strict=True):
        names = {n for n in p.units if n in LANE_UNITS}
        if names != set(LANE_UNITS):
            raise ValueError(f"{p.key}: lane units {sorted(names)} are not {sorted(LANE_UNITS)}")
        for name, feats in LANE_UNITS.items():
            u = p.units[name]
            want = sum(row[idx[f]] for f in feats)
            if u["instances"] != want:
                raise ValueError(f"{p.key}: {u['instances']} instances of {name}, the model's "
                                 f"{' + '.join(feats)} = {want:g}")
            fig = (u["nand2_eq"], u["flip_flops"])
            if seen.setdefault(name, fig) != fig:
                raise ValueError(f"{name} has different figures in different points")
    coef = {part: dict.fromkeys(LANE_FEATURES, 0.0) for part in ("nand2", "flops")}
    for name, feats in LANE_UNITS.items():
        for f in feats:
            coef["nand2"][f] += seen[name][0]
            coef["flops"][f] += seen[name][1]
    return coef


def _fit_rest(x: np.ndarray, y: np.ndarray, lane: dict[str, float]) -> dict[str, float]:
    """Nonnegative fit of what the lane units leave (y - lane part) over the other
    features, minimising the relative squared error of the whole tile (weights 1/y, so
    small and large tiles count alike); columns scaled to unit norm for conditioning."""
    idx = {f: i for i, f in enumerate(A.AREA_FEATURES)}
    rest = [f for f in A.AREA_FEATURES if f not in LANE_FEATURES]
    y_rest = y - sum(lane[f] * x[:, idx[f]] for f in LANE_FEATURES)
    w = 1.0 / y
    m = x[:, [idx[f] for f in rest]] * w[:, None]
    norm = np.linalg.norm(m, axis=0)
    norm[norm == 0] = 1.0
    beta = nnls(m / norm, y_rest * w) / norm
    return {**lane, **{f: float(b) for f, b in zip(rest, beta, strict=True)}}


def prior_coefficients(model_path: Path = MODEL_PATH) -> dict[str, Any]:
    """The initial estimates: area_model.json's ``prior`` block once the file has been
    refit, the file's own coefficients before."""
    model = json.loads(model_path.read_text())
    return model.get("prior") or {k: model[k] for k in ("nand2", "flops", "provenance")}


def fit(points: Sequence[AreaPoint]) -> dict[str, dict[str, float]]:
    """Fitted ``{"nand2": {feature: coeff}, "flops": {...}}``: the lane features from the
    measured units, the others by nonnegative least squares (module docstring)."""
    if len(points) < 12:
        raise ValueError(f"the fit needs at least 12 points, not {len(points)}")
    lane = lane_unit_coefficients(points)
    x = features_of([p.tile for p in points], [p.flit_bits for p in points])
    coef = {"nand2": _fit_rest(x, np.array([p.nand2_eq for p in points]), lane["nand2"]),
            "flops": _fit_rest(x, np.array([float(p.flip_flops) for p in points]),
                               lane["flops"])}
    return {part: {f: c[f] for f in A.AREA_FEATURES} for part, c in coef.items()}


def _r2(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(1 - np.sum((ref - pred) ** 2) / np.sum((ref - ref.mean()) ** 2))


def _stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """R², slope of the least-squares line through the origin (model = slope x Yosys) and
    the maximum relative error."""
    return {"r2": _r2(pred, ref), "slope": float(pred @ ref / (ref @ ref)),
            "max_rel_err": float(np.max(np.abs(pred / ref - 1)))}


def evaluate(points: Sequence[AreaPoint], coeffs: dict[str, dict] | None = None) -> dict:
    """Model vs Yosys: logic NAND2-eq and flip-flops, and tile area per node."""
    x = features_of([p.tile for p in points], [p.flit_bits for p in points])
    if coeffs is None:
        nand2, flops = A.tile_nand2(x), A.tile_flops(x)
    else:
        nand2 = x @ np.array([coeffs["nand2"][f] for f in A.AREA_FEATURES])
        flops = x @ np.array([coeffs["flops"][f] for f in A.AREA_FEATURES])
    y_nand2 = np.array([p.nand2_eq for p in points])
    y_flops = np.array([float(p.flip_flops) for p in points])
    sram = np.array([p.sram_bits for p in points], float)
    rom = np.array([p.rom_bits for p in points], float)
    nodes = {}
    for name in NODES:
        node = load_node(name)
        per_nand2 = node.nand2_area_um2 / node.logic_utilization
        mem = sram * node.sram_um2_per_bit + rom * node.rom_um2_per_bit
        nodes[name] = _stats(nand2 * per_nand2 + mem, y_nand2 * per_nand2 + mem)
        nodes[name]["logic_fraction"] = float(np.mean(y_nand2 * per_nand2
                                                      / (y_nand2 * per_nand2 + mem)))
    return {"n_points": len(points), "logic": _stats(nand2, y_nand2),
            "flops": _stats(flops, y_flops), "nodes": nodes,
            "points": [{"key": p.key, "yosys_nand2": p.nand2_eq, "model_nand2": float(m),
                        "yosys_flops": p.flip_flops, "model_flops": float(f)}
                       for p, m, f in zip(points, nand2, flops, strict=True)]}


def cross_validate(points: Sequence[AreaPoint]) -> dict[str, Any]:
    """Leave-one-out: each point predicted by the fit of the others (needs 13 points);
    the out-of-sample check of the in-sample R² above."""
    x = features_of([p.tile for p in points], [p.flit_bits for p in points])
    pred = {"nand2": [], "flops": []}
    for i in range(len(points)):
        c = fit([p for j, p in enumerate(points) if j != i])
        for part in pred:
            pred[part].append(float(x[i] @ np.array([c[part][f] for f in A.AREA_FEATURES])))
    y = {"nand2": np.array([p.nand2_eq for p in points]),
         "flops": np.array([float(p.flip_flops) for p in points])}
    return {part: _stats(np.array(pred[part]), y[part]) for part in pred}


def summary(path: Path = POINTS_PATH) -> dict[str, Any]:
    """Fidelity of the model as shipped (area_model.json) on the committed points:
    ``{"n_points", "r2_logic", "slope_logic", "max_rel_err_logic", "r2_flops",
    "loo_max_rel_err_logic", "nodes": {node: {"r2", "slope", "max_rel_err"}}}``."""
    points = load_points(path)
    ev = evaluate(points)
    return {"n_points": ev["n_points"], "r2_logic": ev["logic"]["r2"],
            "slope_logic": ev["logic"]["slope"], "max_rel_err_logic": ev["logic"]["max_rel_err"],
            "r2_flops": ev["flops"]["r2"],
            "loo_max_rel_err_logic": cross_validate(points)["nand2"]["max_rel_err"],
            "nodes": {n: {k: s[k] for k in ("r2", "slope", "max_rel_err")}
                      for n, s in ev["nodes"].items()}}


def refit(path: Path = POINTS_PATH, model_path: Path = MODEL_PATH,
          command: str = "python -m sim.area_fit --refit") -> dict[str, Any]:
    """Fit and write the coefficients into ``model_path`` with their provenance; the
    initial estimates stay in the file's ``prior`` block."""
    points = load_points(path)
    model = json.loads(model_path.read_text())
    prior = prior_coefficients(model_path)
    coeffs = fit(points)
    ev = evaluate(points, coeffs)
    model["_about"] = ("Tile logic size as a linear model in NAND2-equivalents (and "
                       "flip-flops) over features of the tile configuration, fitted by "
                       "sim/area_fit.py to Yosys generic synthesis of the generated RTL "
                       "(sim/area_points.json): the per-lane features are the measured "
                       "arithmetic units, the rest a nonnegative least-squares fit; 'prior' "
                       "holds the initial estimates (docs/area.md).")
    model["provenance"] = {
        "source": "nonnegative least-squares fit to Yosys NAND2-equivalents",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"), "command": command,
        "points_file": "sim/area_points.json", "points_sha256": points_digest(path),
        "n_points": len(points), "r2_nand2": round(ev["logic"]["r2"], 6),
        "r2_flops": round(ev["flops"]["r2"], 6),
        "max_rel_err_nand2": round(ev["logic"]["max_rel_err"], 6),
        "measured_units": {f: [n for n, fs in LANE_UNITS.items() if f in fs]
                           for f in LANE_FEATURES},
        "feature_changes": {"scalar_alus": "replaces the initial model's 'xdp': the core "
                            "builds min(xdp, xr_wp, issue_width) scalar ALUs "
                            "(contract.scalar_issue_per_cycle), not one per dispatch port; "
                            "leave-one-out error on the Yosys points is lower with it "
                            "(docs/area.md)"},
        "notes": prior["provenance"].get("notes", {})}
    model["prior"] = prior
    model["nand2"] = {f: round(v, 4) for f, v in coeffs["nand2"].items()}
    model["flops"] = {f: round(v, 4) for f, v in coeffs["flops"].items()}
    tmp = model_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model, indent=2) + "\n")
    tmp.replace(model_path)
    A.load_area_model.cache_clear()
    return ev


def _table(ev: dict[str, Any]) -> str:
    rows = ["| node | R² | slope | max rel. error | logic share of tile area |",
            "|---|---|---|---|---|"]
    for n, s in ev["nodes"].items():
        rows.append(f"| {n} | {s['r2']:.5f} | {s['slope']:.3f} | {s['max_rel_err']:.1%} | "
                    f"{s['logic_fraction']:.0%} |")
    lg, ff = ev["logic"], ev["flops"]
    rows.append(f"| logic only (NAND2-eq) | {lg['r2']:.5f} | {lg['slope']:.3f} | "
                f"{lg['max_rel_err']:.1%} | |")
    rows.append(f"| flip-flops | {ff['r2']:.5f} | {ff['slope']:.3f} | "
                f"{ff['max_rel_err']:.1%} | |")
    return "\n".join(rows)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.area_fit", description=__doc__.split("\n")[0])
    ap.add_argument("--collect", action="store_true",
                    help="synthesise the configurations sim/area_points.json lacks")
    ap.add_argument("--redo", action="store_true",
                    help="with --collect: synthesise every configuration again (cached by hwgen)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many syntheses")
    ap.add_argument("--refit", action="store_true",
                    help="write the fitted coefficients into explorer/ppa/area_model.json")
    ap.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    args = ap.parse_args(argv)
    points = (collect_points(limit=args.limit, redo=args.redo, progress=_log) if args.collect
              else load_points())
    initial = evaluate(points, prior_coefficients())
    before = evaluate(points)
    fitted = evaluate(points, fit(points))
    loo = cross_validate(points)
    after = refit(command="python -m sim.area_fit --refit") if args.refit else None
    if args.json:
        print(json.dumps({"initial_estimates": initial, "shipped": before, "fitted": fitted, "leave_one_out": loo,
                          "written": after is not None}, indent=1))
        return 0
    print(f"{len(points)} Yosys points ({POINTS_PATH.relative_to(ROOT)})\n")
    print("initial estimates (area_model.json 'prior'):\n" + _table(initial) + "\n")
    print("model as shipped (explorer/ppa/area_model.json):\n" + _table(before) + "\n")
    print("after the fit:\n" + _table(fitted))
    print("\nleave-one-out (each point predicted by the fit of the others): "
          + "; ".join(f"{part} R² {s['r2']:.5f}, max rel. error {s['max_rel_err']:.1%}"
                      for part, s in loo.items()))
    if after is not None:
        print(f"\nwrote {MODEL_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
