"""The analytical PPA model against hand computations and physical bounds."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import contract as C
from explorer.design import Design, MemoryConfig, MeshConfig, TileConfig
from explorer.placement import default_placement
from explorer.ppa.kernels import (
    KERNEL_IMEM_FRACTION,
    LOOP_SCALARS,
    TileArrays,
    op_cost,
    plan_kernels,
)
from explorer.ppa.kinds import KIND_INDEX
from explorer.ppa.problem import Problem, summarize
from explorer.ppa.sample import random_design


@cache
def problem(workload: str, node: str) -> Problem:
    return Problem(workload, node)


def tile_arrays(t: TileConfig) -> TileArrays:
    a = {f: np.array([[getattr(t, f)]]) for f in
         ("vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp", "imem_kib")}
    return TileArrays.of(**a)


def one_op(t: TileConfig, kind: str, *, batch=1, m=1, k=0, n=0, elems=0, share=1, tiles=1,
           w_off=False, kv_off=False):
    plan = plan_kernels(np.array([KIND_INDEX[kind]]), np.array([False]), np.array([batch]),
                        np.array([m]), np.array([k]), np.array([n]), np.array([elems]),
                        np.array([share]))
    return op_cost(tile_arrays(t), plan, np.array([[tiles]]), np.array([[w_off]]),
                   np.array([[kv_off]]))


def test_gemv_cycles_match_hand_count():
    # y[16] = W[16 x 64] x[64] on one tile, VLEN 128 (8 FP16 lanes), single issue.
    t = TileConfig(fetch=1, vlen=128, stations=4, xdp=1, vdp=1, xr_wp=1, vr_wp=1,
                   dmem_kib=16, imem_kib=1, wmem_kib=16)
    cost = one_op(t, "matmul", k=64, n=16)
    # Hand count: 2 chunks of 8 outputs; each 8 blocks of (vld + 8 vmacw) = 9 vector
    # instructions; a quarter of 256 IMEM words holds 64 // 9 = 7 blocks per iteration.
    # Body of 7 blocks: 63 vector + 3 loop instructions at one per cycle = 66, + 2 bubble.
    # Remainder of 1 block: 9 + 3 = 12 cycles + 2 bubble. Epilogue (wset, vzero, vcvt,
    # vst = 4 instructions) + MAC drain 3 + load latency 2 = 9.
    per_chunk = (66 + 2) + (12 + 2) + 4 + 3 + 2
    assert cost.cycles[0, 0] == 2 * per_chunk == 182
    assert cost.mac_lane_ops[0, 0] == 2 * 8 * 8 * 8          # 2 chunks x 64 vmacw x 8 lanes
    assert cost.wmem_bits[0, 0] == 2 * 64 * 128               # one WMEM row per vmacw
    assert cost.bound[0, 0] == 0                              # issue-bound counts as compute
    assert 64 // 9 == int(256 * KERNEL_IMEM_FRACTION) // 9 and LOOP_SCALARS == 3


def test_gemv_wide_issue_is_vmac_bound():
    # With 4-wide issue the 8 vmacw of a block dominate: 8 cycles per block.
    t = TileConfig(fetch=4, vlen=128, stations=8, xdp=1, vdp=3, dmem_kib=16, imem_kib=4, wmem_kib=16)
    cost = one_op(t, "matmul", k=64, n=8)
    u = min(8, int(1024 * KERNEL_IMEM_FRACTION) // 9)         # all 8 blocks unrolled
    body = max(8 * u, u, math.ceil((9 * u + 3) / 4)) + C.BRANCH_PENALTY_CYCLES
    assert cost.cycles[0, 0] == body + 4 + C.MAC_LATENCY + C.LOAD_LATENCY


# softmax is not here: its row max is reduced across lanes by broadcasting each lane through
# the MAC unit (3 VMAC ops per lane, no lane-max instruction), so wide vectors lose on short
# rows (test_softmax_lane_max_grows_with_lanes).
@pytest.mark.parametrize("kind", ["matmul", "attn_qk", "add", "rmsnorm", "silu_mul"])
def test_more_lanes_never_slower_on_compute_bound_ops(kind):
    shapes = {"matmul": dict(batch=1, m=8, k=512, n=512), "attn_qk": dict(batch=8, m=1, k=64, n=512, share=4),
              "add": dict(elems=8192), "softmax": dict(elems=8192, n=512),
              "rmsnorm": dict(elems=8192, n=1024), "silu_mul": dict(elems=8192)}[kind]
    prev = math.inf
    for vlen in (128, 256, 512, 1024, 2048):
        t = TileConfig(fetch=8, vlen=vlen, stations=16, xdp=2, vdp=4, xr_wp=2, vr_wp=2,
                       dmem_kib=512, imem_kib=128, wmem_kib=16)
        cycles = one_op(t, kind, **shapes).cycles[0, 0]
        assert cycles <= prev, f"{kind}: VLEN {vlen} takes {cycles} cycles > {prev}"
        prev = cycles


def test_softmax_lane_max_grows_with_lanes():
    # Per row: 3 VMAC ops per lane for the cross-lane max; with rows of 64 keys the blocks
    # shrink with VLEN but the broadcast grows: 2048-bit tiles are slower than 512-bit.
    def cycles(vlen):
        t = TileConfig(fetch=8, vlen=vlen, stations=16, xdp=2, vdp=4, xr_wp=2, vr_wp=2,
                       dmem_kib=512, imem_kib=128, wmem_kib=16)
        return one_op(t, "softmax", elems=64 * 64, n=64).cycles[0, 0]
    assert cycles(2048) > cycles(512)
    assert cycles(2048) - cycles(1024) >= 64 * 3 * (128 - 64)


def _random_designs(seed: int, workload: str, node: str, n: int) -> list[Design]:
    p = problem(workload, node)
    rng = np.random.default_rng(seed)
    return [random_design(rng, p.tech.name, p.tech.fmax_mhz, max_side=12) for _ in range(n)]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_rooflines_over_random_designs(seed):
    p = problem("llama3.1-8b", "7nm")
    designs = _random_designs(seed, "llama3.1-8b", "7nm", 24)
    r = p.evaluate(designs)
    for name, ph in r.phases.items():
        flops_per_token = p.tables.phases[name].flops / p.tables.phases[name].tokens
        # Tokens/s never above peak compute / FLOPs per token.
        assert (ph.tokens_per_s * flops_per_token <= r.peak_flops_per_s * (1 + 1e-9)).all(), name
    dec = r.phases["decode"]
    pt = p.tables.phases["decode"]
    mm = pt.u_kind[pt.op_uid] == KIND_INDEX["matmul"]
    streamed = pt.u_weight_read_bytes[pt.op_uid][mm].sum()      # every matmul weight, once
    off = np.array([d.memory.weights == "off_chip" for d in designs])
    # Decode with streamed weights never beats the weight-streaming bandwidth bound.
    bound = r.offchip_bytes_per_s / streamed * pt.tokens
    assert (dec.tokens_per_s[off] <= bound[off] * (1 + 1e-9)).all()
    for x in (r.area_mm2, r.power_mw, dec.tokens_per_s, dec.energy_pj):
        assert np.isfinite(x).all() and (x > 0).all()


def test_more_sram_never_less_area():
    p = problem("smolvlm-256m", "28nm")
    base = TileConfig(vlen=256, dmem_kib=64, imem_kib=8, wmem_kib=1024)
    areas = []
    for dmem in (16, 32, 64, 128, 256, 512):
        t = TileConfig(vlen=256, dmem_kib=dmem, imem_kib=8, wmem_kib=1024)
        d = Design("a", "28nm", MeshConfig.uniform(2, 2, t), clock_mhz=10.0)
        areas.append(float(p.evaluate([d]).area_mm2[0]))
    assert areas == sorted(areas) and areas[-1] > areas[0]
    assert base.dmem_kib == 64


def test_smaller_node_never_more_compute_energy_at_equal_vdd():
    t = TileConfig(vlen=512, dmem_kib=128, imem_kib=8, wmem_kib=0)
    energies = []
    for node in ("28nm", "22nm", "14nm", "10nm", "7nm", "5nm", "3nm"):
        p = problem("smolvlm-256m", node)
        d = Design("e", node, MeshConfig.uniform(2, 2, t), MemoryConfig("off_chip", "lpddr5x", 1),
                   clock_mhz=10.0, vdd_v=0.7)
        energies.append(float(p.evaluate([d]).phases["decode"].energy_breakdown_pj["compute"][0]))
    assert all(a >= b for a, b in zip(energies, energies[1:], strict=False)), energies


def test_llama_weights_on_a_3nm_die_are_infeasible_and_say_why():
    p = problem("llama3.1-8b", "3nm")
    t = TileConfig(vlen=2048, dmem_kib=256, imem_kib=16, wmem_kib=8 * 1024)    # 8 GiB of ROM in all
    d = Design("onchip", "3nm", MeshConfig.uniform(32, 32, t), clock_mhz=1000.0)
    r = p.evaluate([d])
    assert not r.feasible[0]
    reasons = r.reasons(0)
    assert "die area above the reticle limit" in reasons
    assert "weights do not fit the WMEM of their tile group" in reasons
    # 16.06 GB of FP16 weights at N3 ROM density (~76 Mb/mm2) need ~1,700 mm2 > 858 mm2.
    assert "on-die weights need more area than the reticle at this node's ROM/SRAM density" in reasons


def test_clock_above_fmax_is_infeasible():
    p = problem("smolvlm-256m", "28nm")
    t = TileConfig(vlen=256, dmem_kib=256, imem_kib=8, wmem_kib=0)
    ok = Design("ok", "28nm", MeshConfig.uniform(2, 2, t), MemoryConfig("off_chip", "lpddr5x", 2),
                clock_mhz=250.0)
    fast = ok.with_(name="fast", clock_mhz=400.0)
    low_v = ok.with_(name="lowv", vdd_v=0.6)                  # fmax(0.6 V) < 250 MHz
    r = p.evaluate([ok, fast, low_v])
    assert "clock above the node's fmax at this supply" not in r.reasons(0)
    assert "clock above the node's fmax at this supply" in r.reasons(1)
    assert "clock above the node's fmax at this supply" in r.reasons(2)


def test_default_placement_is_a_pipeline_of_single_class_groups():
    p = problem("smolvlm-256m", "28nm")
    a, b = TileConfig(vlen=256, wmem_kib=4096), TileConfig(vlen=512, wmem_kib=8192)
    grid = ((0, 0, 0), (1, 1, 1), (0, 0, 0))
    mesh = MeshConfig(3, 3, (a, b), grid)
    pl = default_placement(p.tables, mesh, n_groups=4)
    assert set(pl.op_group) == set(p.tables.op_names)
    seq = [pl.op_group[n] for n in p.tables.op_names]
    assert seq == sorted(seq)
    for g in pl.groups:
        assert len({mesh.class_grid[r][c] for r, c in g.tiles}) == 1
    assert sum(len(g) for g in pl.groups) == 9


def test_non_pipeline_placement_is_rejected():
    p = problem("smolvlm-256m", "28nm")
    t = TileConfig(vlen=256, wmem_kib=65536)
    mesh = MeshConfig.uniform(2, 2, t)
    pl = default_placement(p.tables, mesh, n_groups=2)
    names = p.tables.op_names
    swapped = dict(pl.op_group)
    swapped[names[0]], swapped[names[-1]] = pl.op_group[names[-1]], pl.op_group[names[0]]
    d = Design("x", "28nm", mesh, placement=type(pl)(pl.workload, pl.groups, swapped), clock_mhz=10.0)
    from explorer.errors import InputError
    with pytest.raises(InputError, match=r"placement is not a pipeline"):
        p.evaluate([d])


def test_summary_has_the_headline_keys():
    p = problem("llama3.1-8b", "3nm")
    d = Design.from_json("examples/llama3.1-8b_3nm_hp.json")
    s = summarize(p.evaluate([d]))
    for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "power_mw", "area_mm2",
                "energy_pj_per_token", "peak_flops_per_s", "offchip_bytes_per_s", "bound"):
        assert key in s
    assert s["feasible"] and s["bound"]["decode"] in ("offchip", "noc")
    # Decode streams every weight once per token: energy >= weight bits x memory pJ/bit.
    hbm = p.offchip[4]
    assert s["energy_pj_per_token"] >= p.tables.weight_bytes * 8 * hbm.pj_per_bit


def test_batch_and_single_evaluation_agree():
    p = problem("smolvlm-256m", "7nm")
    designs = _random_designs(7, "smolvlm-256m", "7nm", 6)
    together = p.evaluate(designs)
    for i, d in enumerate(designs):
        alone = p.evaluate([d])
        for name in together.phases:
            assert together.phases[name].tokens_per_s[i] == pytest.approx(alone.phases[name].tokens_per_s[0])
        assert together.power_mw[i] == pytest.approx(alone.power_mw[0])
        assert together.violations[i] == alone.violations[0]


def _fields(r, i: int, g_tiles: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of design ``i`` of a PPAResult (per-group arrays on its active groups)."""
    active = g_tiles[i] > 0
    out = {f: np.asarray(getattr(r, f))[i] for f in
           ("area_mm2", "clock_power_mw", "leakage_mw", "power_mw", "die_power_mw",
            "peak_flops_per_s", "offchip_bytes_per_s", "kv_offchip", "violations", "fmax_mhz")}
    out.update({f"area.{k}": v[i] for k, v in r.area_breakdown_mm2.items()})
    for name, ph in r.phases.items():
        for f in ("tokens_per_s", "latency_s", "energy_pj", "power_mw", "bound", "offchip_bytes_per_s"):
            out[f"{name}.{f}"] = getattr(ph, f)[i]
        out.update({f"{name}.energy.{k}": v[i] for k, v in ph.energy_breakdown_pj.items()})
        out[f"{name}.group_cycles"] = ph.group_cycles[i][: active.sum()]
        out[f"{name}.op_counts"] = ph.op_counts[i][: active.sum()]
        out[f"{name}.op_busy_cycles"] = ph.op_busy_cycles[i][: active.sum()]
    return out


@pytest.mark.parametrize(("workload", "node"), [("llama3.1-8b", "5nm"), ("smolvlm-256m", "22nm")])
def test_every_output_is_independent_of_the_batch(workload, node):
    """A design's outputs do not depend on its batch-mates: the model shares work between
    designs (padding groups share one entry, phases and kernel families are computed as
    stacked arrays), so a batch with padded groups must equal one-design evaluations."""
    p = problem(workload, node)
    designs = _random_designs(11, workload, node, 12)
    batch = p.batch_of(designs)
    assert (batch.g_tiles == 0).any() and batch.weights_offchip.any() and (~batch.weights_offchip).any()
    together = p.evaluate(batch)
    for i in range(len(designs)):
        alone = p.evaluate(batch.take([i]))
        want = _fields(alone, 0, batch.g_tiles[[i]])
        got = _fields(together, i, batch.g_tiles)
        assert got.keys() == want.keys()
        for k, v in want.items():
            assert np.asarray(got[k]).dtype == np.asarray(v).dtype, k
            np.testing.assert_allclose(got[k], v, rtol=1e-12, atol=0, err_msg=k)
        for ph in together.phases.values():   # padding groups: no ops, no busy cycles
            pad = batch.g_tiles[i] == 0
            assert not ph.op_counts[i][pad].any() and not ph.op_busy_cycles[i][pad].any()


def test_tabulated_schedule_terms_match_their_formulas():
    """The model gathers loop alignment and look-ahead from tables built once
    (``PassTable.alignment``); they equal ``window_alignment`` / ``loop_shape`` evaluated
    directly for the same schedule and issue rates."""
    from explorer.ppa.ewpass import MAX_VI, MAX_WP, loop_shape, window_alignment
    from explorer.ppa.ewtable import MAX_ISSUE, pass_table
    T = pass_table()
    rng = np.random.default_rng(5)
    for _ in range(200):
        pid = int(rng.integers(T.cycles.shape[0]))
        vi, wp = int(rng.integers(MAX_VI)), int(rng.integers(MAX_WP))
        iw = int(rng.integers(1, MAX_ISSUE + 1))
        si = int(rng.integers(1, iw + 1))
        r, cap_last, cap_total = window_alignment(T.vec_use[pid, vi, wp], iw, si)
        _, ahead, _ = loop_shape(0, 1, T.cycles[pid, vi, wp], T.blocks[pid, vi, wp],
                                 T.span[pid, vi, wp], r)
        cell = ((pid * MAX_VI + vi) * MAX_WP + wp) * MAX_ISSUE * MAX_ISSUE + (iw - 1) * MAX_ISSUE + si - 1
        assert tuple(T.alignment[:, cell]) == (r, cap_last, cap_total, ahead)


def test_unique_inverse_equals_numpy():
    from explorer.ppa.model import _unique_inverse
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 500):
        x = rng.integers(-1, 30, n)
        u, inv = _unique_inverse(x)
        u_np, inv_np = np.unique(x, return_inverse=True)
        assert np.array_equal(u, u_np) and np.array_equal(inv, inv_np.ravel())
