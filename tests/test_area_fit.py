"""Area calibration (sim/area_fit.py): NNLS, the fit from the committed Yosys points, and
one fresh synthesis against its cached point."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from explorer.ppa import area as A
from sim import area_fit as F
from sim.area_points import memory_bits, rtl_digest


def _brute_nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Reference: the best feasible unconstrained solution over every support."""
    best, best_r = np.zeros(a.shape[1]), float(np.linalg.norm(b))
    for k in range(1, a.shape[1] + 1):
        for s in itertools.combinations(range(a.shape[1]), k):
            z = np.linalg.lstsq(a[:, s], b, rcond=None)[0]
            if (z >= 0).all():
                x = np.zeros(a.shape[1])
                x[list(s)] = z
                r = float(np.linalg.norm(a @ x - b))
                if r < best_r - 1e-12:
                    best, best_r = x, r
    return best


@pytest.mark.parametrize("seed", range(8))
def test_nnls_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(14, 6))
    b = rng.normal(size=14)
    np.testing.assert_allclose(F.nnls(a, b), _brute_nnls(a, b), atol=1e-9)


def _synthetic_points(truth_rest: dict[str, float], unit_nand2: dict[str, float]):
    """Points of CONFIGS whose Yosys figures follow known coefficients exactly."""
    tiles, flits = [t for t, _ in F.CONFIGS], [f for _, f in F.CONFIGS]
    x = F.features_of(tiles, flits)
    idx = {f: i for i, f in enumerate(A.AREA_FEATURES)}
    pts = []
    for t, fl, row in zip(tiles, flits, x, strict=True):
        units = {n: {"instances": int(sum(row[idx[f]] for f in fs)), "nand2_eq": unit_nand2[n],
                     "flip_flops": 0} for n, fs in F.LANE_UNITS.items()}
        y = sum(u["instances"] * u["nand2_eq"] for u in units.values())
        y += sum(c * row[idx[f]] for f, c in truth_rest.items())
        pts.append(F.AreaPoint(t, fl, float(y), int(y / 40), 0, *memory_bits(t), {}, units))
    return pts


def test_fit_recovers_known_coefficients():
    """Synthetic points from known nonnegative coefficients come back exactly: the lane
    features as the sums of their units, the rest by the NNLS fit (one coefficient 0)."""
    rng = np.random.default_rng(1)
    rest = [f for f in A.AREA_FEATURES if f not in F.LANE_FEATURES]
    truth = {f: float(rng.uniform(10, 1000)) for f in rest}
    truth["xr_wp"] = 0.0
    units = {n: float(rng.uniform(300, 5000)) for n in F.LANE_UNITS}
    got = F.fit(_synthetic_points(truth, units))["nand2"]
    for f in rest:
        assert got[f] == pytest.approx(truth[f], rel=1e-6, abs=1e-6), f
    assert got["valu_lanes"] == pytest.approx(sum(units[f"l2s_fp16_{op}"] for op in
                                                  ("add", "mul", "max", "exp", "rcp", "rsqrt")))
    assert got["reduce_adders"] == pytest.approx(units["l2s_fp32_add"])
    assert got["lanes_fp16"] == pytest.approx(units["l2s_fp32_add"] + units["l2s_fp16_mul_fp32"]
                                              + units["l2s_fp32_to_fp16"])


def test_fit_rejects_wrong_instance_counts():
    pts = _synthetic_points({"const": 1000.0}, dict.fromkeys(F.LANE_UNITS, 100.0))
    pts[3].units["l2s_int8_mac"]["instances"] += 1
    with pytest.raises(ValueError, match=r"instances of l2s_int8_mac, the model's lanes_int8"):
        F.fit(pts)


def test_configs_identify_every_coefficient():
    x = F.features_of([t for t, _ in F.CONFIGS], [f for _, f in F.CONFIGS])
    rest = [i for i, f in enumerate(A.AREA_FEATURES) if f not in F.LANE_FEATURES]
    assert np.linalg.matrix_rank(x[:13, rest]) == len(rest)
    for drop in range(len(F.CONFIGS)):               # leave-one-out stays identified
        assert np.linalg.matrix_rank(np.delete(x[:, rest], drop, axis=0)) == len(rest), drop


def _points_or_skip():
    pts = F.load_points()
    if len(pts) < 12:
        pytest.skip(f"sim/area_points.json holds {len(pts)} points (run python -m sim.area_fit --collect)")
    return pts


def test_memory_counted_alike():
    """Every point's macro bits are the model's DMEM + IMEM + WMEM bits."""
    for p in _points_or_skip():
        assert (p.sram_bits, p.rom_bits) == memory_bits(p.tile), p.key


def test_fit_reproduces_committed_model():
    """The fit of the committed points is the model in area_model.json, with R² >= 0.95."""
    pts = _points_or_skip()
    model = json.loads(F.MODEL_PATH.read_text())
    assert model["provenance"]["points_sha256"] == F.points_digest()
    coeffs = F.fit(pts)
    for part in ("nand2", "flops"):
        for f in A.AREA_FEATURES:
            assert coeffs[part][f] == pytest.approx(model[part][f], rel=1e-4, abs=1e-3), (part, f)
    ev = F.evaluate(pts)
    assert ev["logic"]["r2"] >= 0.95
    assert ev["logic"]["r2"] == pytest.approx(model["provenance"]["r2_nand2"], abs=1e-5)
    s = F.summary()
    assert s["n_points"] == len(pts) >= 12
    for node in F.NODES:
        assert s["nodes"][node]["r2"] >= 0.95, node


def test_r2_and_slope_by_hand():
    """_stats against a hand computation."""
    ref, pred = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    s = F._stats(pred, ref)
    assert s["r2"] == pytest.approx(1 - 1 / 2)            # SSE 1, SST 2
    assert s["slope"] == pytest.approx((1 + 4 + 12) / 14)
    assert s["max_rel_err"] == pytest.approx(1 / 3)


@pytest.mark.expensive
def test_fresh_synthesis_matches_cached_point():
    """The smallest configuration synthesised again (empty cache) gives its stored point."""
    pts = _points_or_skip()
    tile, flit = F.CONFIGS[0]
    stored = next(p for p in pts if p.key == f"{tile}-L{flit}")
    if stored.provenance.get("rtl_src_sha256") != rtl_digest():
        pytest.skip("hwgen changed since the points were collected (re-collect them)")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = F.synth_point(tile, flit, cache_dir=Path(tmp))
    assert (fresh.nand2_eq, fresh.flip_flops, fresh.cells) == (
        stored.nand2_eq, stored.flip_flops, stored.cells)


# --- memories built from flip-flops (IMEM banks below the macro limit) -------------------


def test_flop_memory_line_reproduces_the_wrapper_syntheses():
    """The area model's flop_memory line is the least-squares fit of the stored Yosys points
    and predicts each within 1.5 %."""
    from sim import flop_memory as FM

    doc = json.loads(FM.POINTS_PATH.read_text())
    line = A.load_area_model()["flop_memory"]
    assert line["provenance"]["points_sha256"] == __import__("hashlib").sha256(
        FM.POINTS_PATH.read_bytes()).hexdigest()
    fitted = FM.fit(doc["points"])
    assert line["nand2_per_bit"] == pytest.approx(fitted["nand2_per_bit"], abs=1e-4)
    for p in doc["points"]:
        pred = line["nand2_per_bit"] * p["bits"] + line["nand2_per_bank"]
        assert pred == pytest.approx(p["nand2_eq"], rel=0.015), p["module"]


def test_imem_below_the_macro_limit_is_priced_as_logic_not_sram():
    """2 KiB IMEM: fetch 4 gives four 128 x 32 banks (4096 bits, flip-flops), fetch 2 two
    256 x 32 banks (macros). Hand computation from the line and the node's bit cell."""
    from explorer import contract as C
    from explorer.tech import load_node

    node = load_node("28nm")
    line = A.load_area_model()["flop_memory"]
    assert C.imem_flop_bits(2, 4) == 4 * 128 * 32 and C.imem_flop_bits(2, 2) == 0
    assert C.imem_flop_bits(2, 6) == 6 * 86 * 32                 # ceil(512 / 6) rows
    assert (C.imem_flop_bits(np.array([2, 2, 2]), np.array([2, 4, 6])).tolist()
            == [0, 16384, 16512])
    assert A.tile_flop_memory_nand2(2, 4) == pytest.approx(
        line["nand2_per_bit"] * 16384 + 4 * line["nand2_per_bank"])
    assert A.tile_flop_memory_nand2(2, 2) == 0.0
    bit = node.sram_um2_per_bit
    sram4, _ = A.tile_sram_um2(16, 2, 0, True, 4, node)
    sram2, _ = A.tile_sram_um2(16, 2, 0, True, 2, node)
    assert float(sram4) == pytest.approx(16 * 8192 * bit)        # DMEM only
    assert float(sram2) == pytest.approx(18 * 8192 * bit)        # DMEM + IMEM


def test_model_matches_yosys_on_the_flop_imem_of_the_main_job_pick():
    """Six 86 x 32 IMEM banks (F6, 2 KiB): the model's flip-flop IMEM against six times the
    wrapper's Yosys figure (26,405 NAND2-eq each, sim/flop_memory_points.json)."""
    from sim import flop_memory as FM

    pts = {p["rows"]: p for p in json.loads(FM.POINTS_PATH.read_text())["points"]}
    assert A.tile_flop_memory_nand2(2, 6) == pytest.approx(6 * pts[86]["nand2_eq"], rel=0.01)
