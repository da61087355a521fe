"""Model vs ISS-timed cycles on a reduced point set (the full table: python -m sim.fidelity_iss)."""

from __future__ import annotations

import statistics

import pytest

from sim.fidelity_iss import POINTS, QUICK, measure, summary


@pytest.fixture(scope="module")
def quick_results():
    return [measure(p) for p in QUICK]


def test_quick_set_spans_the_op_families():
    kinds = {p.kind for p in QUICK}
    assert {"matmul", "attn_qk", "attn_av", "rmsnorm", "softmax", "silu_mul", "layernorm",
            "add", "gelu"} <= kinds
    assert len(QUICK) >= 10 and len(POINTS) >= 30
    assert any(p.b_net for p in QUICK)


def test_quick_set_meets_the_cycle_error_targets(quick_results):
    s = summary(quick_results)
    table = "\n".join(f"{r.point}: model {r.model_cycles:.0f} ISS {r.iss_cycles} "
                      f"({100 * r.error:+.1f}%)" for r in quick_results)
    assert s["median_abs_error"] <= 0.05, table
    assert s["max_abs_error"] <= 0.15, table


def test_quick_set_results_are_within_tolerance(quick_results):
    assert all(r.accuracy <= 1.0 for r in quick_results), [(r.point, r.accuracy) for r in quick_results]


def test_gemm_points_are_tight(quick_results):
    # The GEMM loop nests are VMAC/VLSU-bound with every latency hidden: within 5 %.
    gemm = [abs(r.error) for r in quick_results if r.kind in ("matmul", "attn_qk", "attn_av")]
    assert max(gemm) <= 0.05 and statistics.median(gemm) <= 0.02
