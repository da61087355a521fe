"""The design MDP: gymnasium API, masks, decoding, reward terms and the Pareto archive."""

from __future__ import annotations

import dataclasses
import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given
from hypothesis import strategies as st

from explorer import space as S
from explorer.agents import make_agent
from explorer.design import Design
from explorer.env import ENV_ID, AsicDesignEnv
from explorer.pareto import ParetoArchive, ParetoPoint, dominates, pareto_front, select
from explorer.ppa.batch import from_designs
from explorer.reward import MODES, formula_text, reward, terms
from explorer.tech.node import RETICLE_MM2


@pytest.fixture(scope="module")
def env() -> AsicDesignEnv:
    return AsicDesignEnv("smolvlm-256m", "28nm", "low-power")


@pytest.fixture(scope="module")
def env_perf() -> AsicDesignEnv:
    return AsicDesignEnv("llama3.1-8b", "3nm", "performance")


def _episode(env: AsicDesignEnv, policy) -> tuple[float, dict]:
    obs, info = env.reset()
    while True:
        obs, r, term, trunc, info = env.step(policy(obs, info))
        if term or trunc:
            return r, info


@pytest.mark.parametrize("problem", [("smolvlm-256m", "28nm", "low-power"),
                                     ("llama3.1-8b", "3nm", "performance")])
def test_check_env(problem: tuple[str, str, str]) -> None:
    workload, node, mode = problem
    check_env(gym.make(ENV_ID, workload=workload, node=node, mode=mode).unwrapped)


def test_registered_id() -> None:
    e = gym.make(ENV_ID, workload="smolvlm-256m", node="28nm", mode="performance")
    obs, info = e.reset(seed=1)
    assert e.observation_space.contains(obs)
    assert len(info["action_mask"]) == len(S.DISCRETE)
    assert info["stage"] == "mesh"


def test_spaces_same_every_step(env: AsicDesignEnv) -> None:
    spaces = env.agent_spaces
    assert spaces.episode_steps == len(S.STAGES) == 12
    assert list(spaces.nvec) == [len(v) for v in S.DISCRETE.values()]
    sizes = {k: s.stop - s.start for k, s in spaces.obs_slices.items()}
    assert sum(sizes.values()) == env.observation_space.shape[0]
    assert sizes["stage"] == 13 and sizes["node"] == 13 and sizes["design"] == S.DESIGN_FEATURES


def test_random_agent_respects_masks(env: AsicDesignEnv) -> None:
    agent = make_agent("random", env, seed=3, batch=1)
    for _ in range(40):
        obs, info = env.reset()
        while True:
            a = agent.act(obs, info)
            for j, m in enumerate(info["action_mask"]):
                assert m[a["discrete"][j]], (info["stage"], list(S.DISCRETE)[j])
            obs, r, term, _, info = env.step(a)
            if term:
                break
        assert info["projected"] == 0


def test_unmasked_actions_give_valid_designs(env: AsicDesignEnv) -> None:
    """Actions drawn from the whole action space (masks ignored) still build legal designs."""
    env.action_space.seed(7)
    for _ in range(25):
        r, info = _episode(env, lambda obs, info: env.action_space.sample())
        assert math.isfinite(r)
        design = env.current_design()
        assert isinstance(Design.from_dict(design.to_dict()), Design)
        assert not info["violations"] & 128          # kernel code always fits IMEM


def test_masks_by_stage(env: AsicDesignEnv) -> None:
    ch = S.Choices(rows=1, cols=3, flit_bits=64, weights="off_chip", stage=1)
    m = S.masks(ch, env.space_context)
    names = list(S.DISCRETE)
    assert list(m[names.index("classes")]) == [True, True, True, False]   # K <= 3 tiles
    assert m[names.index("rows")].sum() == 1                              # not this stage
    ch = dataclasses.replace(ch, classes=1, layout="row_bands", shares=(0.0,),
                             tiles=({"fetch": 1, "vlen": 2048, "stations": 1, "xdp": 1, "vdp": 1,
                                     "xr_wp": 1, "vr_wp": 1},), stage=3)
    m = S.masks(ch, env.space_context)
    assert [k for k, ok in zip(S.DISCRETE["imem_kib"], m[names.index("imem_kib")], strict=True) if ok] \
        == [4, 8, 16, 32, 64, 128]
    assert m[names.index("wmem_kind")].sum() == 1                         # weights off chip
    unused = dataclasses.replace(ch, stage=4)                             # class1.core, K = 1
    assert all(mm.sum() == 1 for mm in S.masks(unused, env.space_context))
    last = dataclasses.replace(ch, stage=10)
    off = S.masks(last, env.space_context)[names.index("offchip")]
    assert not off[0] and off[1:].all()                                   # off-chip weights need memory


@pytest.mark.parametrize("vlen", S.DISCRETE["vlen"])
def test_imem_mask_matches_the_model(env: AsicDesignEnv, vlen: int) -> None:
    """The smallest IMEM the mask allows passes the PPA model's check; one size less fails."""
    ok = S.imem_min_kib(vlen)
    for imem, flagged in ((ok, False), (ok // 2, True)):
        if imem < 1:
            continue
        tile = {"fetch": 1, "vlen": vlen, "stations": 4, "xdp": 1, "vdp": 1, "xr_wp": 1,
                "vr_wp": 1, "dmem_kib": 512, "imem_kib": imem, "wmem_kind": "rom"}
        ch = S.Choices(rows=2, cols=2, flit_bits=256, weights="off_chip", classes=1,
                       layout="row_bands", shares=(0.0,), tiles=(tile,), offchip="lpddr5x",
                       vdd_v=None, channels=1, groups=1, mix=0.5, stage=len(S.STAGES))
        res = env.problem.evaluate(S.to_batch([ch], env.space_context))
        assert bool(res.violations[0] & 128) is flagged


def test_to_batch_equals_decoded_designs(env: AsicDesignEnv) -> None:
    """The fast array path gives the same model input as Design objects + from_designs."""
    agent = make_agent("random", env, seed=11, batch=1)
    choices = []
    for _ in range(30):
        _episode(env, agent.act)
        choices.append(env.choices)
    fast = S.to_batch(choices, env.space_context)
    slow = from_designs([S.decode(c, env.space_context) for c in choices], env.problem.tables)
    for f in dataclasses.fields(fast):
        a, b = getattr(fast, f.name), getattr(slow, f.name)
        assert a.shape == b.shape, f.name
        np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, err_msg=f.name)


def test_layouts_and_shares() -> None:
    grid = np.array(S.class_grid(4, 4, "checkerboard", (0.0, 0.0)))
    assert (grid == (np.add.outer(np.arange(4), np.arange(4)) % 2)).all()
    grid = np.array(S.class_grid(3, 5, "col_bands", (0.0, 0.0, 0.0)))   # 5 tiles per class
    r, c = np.indices((3, 5))
    assert (grid == (c * 3 + r) // 5).all()                                 # column-major fill
    ring = np.array(S.class_grid(5, 5, "ring", (0.0, 1.0)))     # class 0 in the centre
    assert ring[2, 2] == 0 and ring[0, 0] == 1
    counts = np.bincount(np.array(S.class_grid(8, 8, "row_bands", (1.0, -1.0))).ravel())
    w = np.exp([2.0, -2.0])
    assert counts.sum() == 64 and counts.min() >= 1
    assert abs(counts[0] - 62 * w[0] / w.sum() - 1) <= 1


_NVEC = [len(v) for v in S.DISCRETE.values()]
_action = st.tuples(st.tuples(*(st.integers(0, n - 1) for n in _NVEC)),
                    st.lists(st.floats(-1.0, 1.0, width=32), min_size=6, max_size=6))


@given(actions=st.lists(_action, min_size=12, max_size=12))
def test_reward_finite_on_any_actions(env_perf: AsicDesignEnv, actions) -> None:
    env_perf.reset()
    for i, (d, c) in enumerate(actions):
        obs, r, term, trunc, info = env_perf.step({"discrete": np.array(d), "continuous":
                                                   np.array(c, np.float32)})
        assert env_perf.observation_space.contains(obs)
        assert term == (i == 11)
    assert math.isfinite(r)
    assert all(math.isfinite(v) for v in info["terms"].values())
    assert 0.0 <= info["objectives"]["perf"] <= 1.0


def test_reward_terms_by_hand(env: AsicDesignEnv) -> None:
    """Recompute the documented formula from the PPA summary of the example design."""
    d = Design.from_json("examples/smolvlm-256m_28nm_lp.json")
    res = env.problem.evaluate([d])
    ctx = env.reward_context
    t = terms(res, 0, ctx)
    perf = np.mean([min(max((math.log10(float(ph.tokens_per_s[0])) - math.log10(ctx.perf_range[n][0]))
                            / math.log10(ctx.perf_range[n][1] / ctx.perf_range[n][0]), 0), 1)
                    for n, ph in res.phases.items()])
    p_mw, budget = float(res.power_mw[0]), 13.0
    v = math.log10(p_mw / budget)
    expected = (0.2 * perf - 0.6 * min(p_mw / budget, 1) - 0.2 * float(res.area_mm2[0]) / RETICLE_MM2
                + (1 + max(-1.0, (budget - p_mw) / budget)) - (1 + v) * v * v)
    assert bool(res.feasible[0]) and float(res.phases["decode"].tokens_per_s[0]) >= 5
    assert t["total"] == pytest.approx(expected, rel=1e-12)
    assert reward(res, 0, "low-power", ctx) == t["total"]
    with pytest.raises(ValueError, match=r"^mode 'performance' does not match"):
        reward(res, 0, "performance", ctx)


def test_reward_penalties_graded(env: AsicDesignEnv) -> None:
    d = Design.from_json("examples/smolvlm-256m_28nm_lp.json")
    res = env.problem.evaluate([d])
    ctx = env.reward_context

    def with_(**kw) -> dict:
        return terms(dataclasses.replace(res, **{k: np.array([v]) for k, v in kw.items()}), 0, ctx)

    assert with_(power_mw=130.0)["power_violation"] == pytest.approx(2.0)      # v = 1 decade
    assert with_(power_mw=1300.0)["power_violation"] == pytest.approx(12.0)    # (1 + 2) * 4
    assert with_(power_mw=13.0)["bonus"] == pytest.approx(1.0)                 # zero margin
    assert with_(power_mw=13.0)["power_violation"] == 0.0
    mem = with_(violations=4 | 16)
    assert mem["memory"] == 2.0 and mem["bonus"] == 0.0 and mem["hazard"] == 0.0
    big = with_(violations=1, area_mm2=RETICLE_MM2 * 10)
    assert big["hazard"] == pytest.approx(2.0)                                  # 1 + one decade
    assert with_(violations=1, area_mm2=RETICLE_MM2 * 100)["total"] < big["total"]


def test_formula_text() -> None:
    assert "0.40*Perf_n - 0.40*Power_n - 0.20*Area_n" in formula_text("performance")
    lp = formula_text("low-power")
    assert "0.20*Perf_n - 0.60*Power_n - 0.20*Area_n" in lp and "P_target" in lp
    assert MODES["low-power"].weights == pytest.approx((0.2, 0.6, 0.2))
    with pytest.raises(ValueError, match=r"^mode must be one of performance, low-power, not 'x'$"):
        formula_text("x")


def _brute_front(points: list[ParetoPoint]) -> set[int]:
    keep = set()
    for p in points:
        if any(dominates(q, p) for q in points):
            continue
        if any(q.as_min() == p.as_min() and q.episode < p.episode for q in points):
            continue
        keep.add(p.episode)
    return keep


def test_pareto_front_against_brute_force() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        pts = [ParetoPoint(i, *rng.integers(0, 6, 3) / 5) for i in range(40)]
        assert {p.episode for p in pareto_front(pts)} == _brute_front(pts)
        archive = ParetoArchive()
        for p in pts:
            archive.add(p)
        assert {p.episode for p in archive.front} == _brute_front(pts)


def test_pareto_select_front_normalised() -> None:
    front = [ParetoPoint(0, 0.2, 0.1, 0.5), ParetoPoint(1, 0.9, 0.8, 0.5), ParetoPoint(2, 0.5, 0.3, 0.5)]
    # z-scores: perf (0, 1, 3/7), power (0, 1, 2/7); 0.4 perf - 0.4 power: 0, 0, 0.057 -> episode 2
    assert select(front, (0.4, 0.4, 0.2)).episode == 2
    assert select(front, (0.8, 0.1, 0.1)).episode == 1
    assert select(front, (0.1, 0.8, 0.1)).episode == 0
    with pytest.raises(ValueError, match=r"^the Pareto front is empty$"):
        select([], (1, 1, 1))


def test_vdd_range_meets_clock(env_perf: AsicDesignEnv) -> None:
    node = env_perf.problem.tech
    lo, hi = S.vdd_range(node, node.fmax_mhz)
    assert float(node.fmax_mhz_at(lo)) >= node.fmax_mhz * (1 - 1e-9)
    assert float(node.fmax_mhz_at(lo - 1e-4)) < node.fmax_mhz
    assert hi == node.vdd_max_v
    assert S.vdd_range(node, 10.0)[0] == node.vdd_min_v


def test_genes_cover_every_stage_dim() -> None:
    from explorer.agents.genome import GENES

    assert len(GENES) == sum(len(s.discrete) + len(s.continuous) for s in S.STAGES)
    assert len({g.name for g in GENES}) == len(GENES)
    assert {(g.step, g.dim) for g in GENES} == {
        (i, d) for i, s in enumerate(S.STAGES) for d in itertools.chain(s.discrete, s.continuous)}
