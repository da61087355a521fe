"""Compiled ops on the emitted mesh RTL (cocotb + Verilator through the host port).

CI set: one small tile (single-issue, VLEN 128) alone and as a 2 x 2 mesh; the two
Verilator builds are cached under build/rtl_sim (about 2 minutes each when cold on the
shared 2-core machine). Every point checks the RTL result bit for bit against the ISS
(the tile's golden model) and against float64 numpy, and the cycle counts against the
ISS (identical on one tile) and the analytical model.
"""

from __future__ import annotations

import numpy as np
import pytest

from explorer.design import TileConfig
from explorer.workloads.graph import Op
from sim.compiler import compile_op, run_program
from sim.rtl import group_cycles, rtl_mesh, run_on_rtl, sim_tile
from sim.toolchain import verilator_available
from sim.verify import VerifyPoint, run_point, summarize_points

pytestmark = pytest.mark.skipif(not verilator_available(), reason="Verilator not installed")

#: The smallest tile of the fidelity set (sim.fidelity_iss t1): one instruction a cycle.
TILE = TileConfig(fetch=1, vlen=128, stations=4, xdp=1, vdp=1, xr_wp=1, vr_wp=1,
                  dmem_kib=64, imem_kib=1, wmem_kib=256, wmem_kind="sram")


def _op(kind: str, **kw) -> Op:
    return Op(kind, kind, "decoder", 0, **kw)


def _check(r: dict, *, iss_equal: bool) -> None:
    assert r["bit_exact_vs_golden"], r
    assert r["tolerance_ratio"] <= 1.0, r
    assert r["functional_pass"], r
    if iss_equal:   # one tile: the ISS's timed mode is cycle exact with the RTL core
        assert r["rtl_cycles"] == r["iss_cycles"], r
    assert abs(r["cycle_error"]) <= 0.15, r


@pytest.mark.parametrize("name,op,share", [
    ("gemv", _op("matmul", m=1, k=256, n=64), 1),
    ("rmsnorm", _op("rmsnorm", elems=512, n=256), 1),
    ("qk", _op("attn_qk", batch=4, m=1, k=64, n=64), 2),
])
def test_single_tile_op_matches_golden_and_model(name, op, share):
    r = run_point(VerifyPoint(name, op, TILE, share=share, flit_bits=64))
    _check(r, iss_equal=True)
    assert r["rtl_cycles"] > 100 and r["max_abs_err_vs_float64"] > 0


def test_matmul_on_2x2_mesh_all_gathers_over_the_noc():
    """Column split with the ring all-gather of x and the barrier: every tile's slice is
    exact, and START-to-last-DONE agrees with the NoC model of the ISS group run."""
    r = run_point(VerifyPoint("mm_2x2", _op("matmul", m=1, k=256, n=128), TILE, group=(2, 2),
                              flit_bits=64))
    _check(r, iss_equal=False)
    assert r["tiles"] == 4
    assert abs(r["rtl_cycles"] / r["iss_cycles"] - 1) <= 0.05, r
    s = summarize_points([r])
    assert s["verilator_cycles_per_s"]["mesh_2x2"] > 0 and s["verilator_cycles_per_s"]["single_tile"] is None


def test_build_cache_is_reused_and_results_are_read_through_the_host_port():
    prog = compile_op(_op("add", elems=256, n=256), sim_tile(TILE), rng=np.random.default_rng(3))
    tile = sim_tile(TILE, [prog])
    first = rtl_mesh(tile, 1, 1, 64)
    again = rtl_mesh(tile, 1, 1, 64)
    assert again.key == first.key and again.build_seconds == 0.0
    run = run_on_rtl(again, [prog])
    iss = run_program(prog)
    assert run.tile_cycles == (iss.cycles,)
    assert np.array_equal(run.outputs[0]["y"], iss.outputs["y"])
    assert run.sim_cycles > run.run_cycles >= run.cycles


def test_group_cycles_counts_from_the_first_start():
    assert group_cycles([10, 12, 11], [100, 95, 120]) == 121
    with pytest.raises(ValueError):
        group_cycles([1], [1, 2])


@pytest.mark.expensive
@pytest.mark.parametrize("tile_name", ["t1", "t2", "t5"])
def test_fidelity_points_on_rtl(tile_name):
    """The benchmark's single-tile points of one tile configuration meet the targets."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fidelity.py"
    spec = importlib.util.spec_from_file_location("fidelity_bench", path)
    bf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bf)
    results = [run_point(p) for p in bf.points((tile_name,), ())]
    for r in results:
        _check(r, iss_equal=True)
    s = summarize_points(results)
    assert s["cycle_error_median"] <= 0.05 and s["cycle_error_max"] <= 0.15
