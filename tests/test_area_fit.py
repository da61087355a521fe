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


def test_fit_recovers_known_coefficients():
    """Synthetic points from known nonnegative coefficients (the vlen group in the prior's
    proportions) come back exactly."""
    prior = F.prior_coefficients()
    rng = np.random.default_rng(1)
    truth = {f: float(rng.uniform(10, 1000)) for f in A.AREA_FEATURES}
    for f in F.VLEN_GROUP:
        truth[f] = 1.7 * prior["nand2"][f]
    truth["xr_wp"] = 0.0
    tiles = [t for t, _ in F.CONFIGS]
    flits = [f for _, f in F.CONFIGS]
    x = F.features_of(tiles, flits)
    y = x @ np.array([truth[f] for f in A.AREA_FEATURES])
    pts = [F.AreaPoint(t, fl, float(v), int(v / 40), 0, *F._memory_bits(t), {})
           for t, fl, v in zip(tiles, flits, y, strict=True)]
    got = F.fit(pts, prior)["nand2"]
    for f in A.AREA_FEATURES:
        assert got[f] == pytest.approx(truth[f], rel=1e-6, abs=1e-6), f


def test_configs_identify_every_coefficient():
    x = F.features_of([t for t, _ in F.CONFIGS], [f for _, f in F.CONFIGS])
    m, names = F._design_matrix(x, F.prior_coefficients()["nand2"])
    assert np.linalg.matrix_rank(m[:12]) == len(names)


def _points_or_skip():
    pts = F.load_points()
    if len(pts) < 12:
        pytest.skip(f"sim/area_points.json holds {len(pts)} points (run python -m sim.area_fit --collect)")
    return pts


def test_memory_counted_alike():
    """Every point's macro bits are the model's DMEM + IMEM + WMEM bits."""
    for p in _points_or_skip():
        assert (p.sram_bits, p.rom_bits) == F._memory_bits(p.tile), p.key


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
    if stored.provenance["hwgen_src_sha256"] != F._hwgen_digest():
        pytest.skip("hwgen changed since the points were collected (re-collect them)")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = F.synth_point(tile, flit, cache_dir=Path(tmp))
    assert (fresh.nand2_eq, fresh.flip_flops, fresh.cells) == (
        stored.nand2_eq, stored.flip_flops, stored.cells)
