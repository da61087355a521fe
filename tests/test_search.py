"""Search loop and baselines: determinism, improvement, checkpoint round trips, commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.agents import AGENT_NAMES, Agent, agent_class, make_agent
from explorer.agents.grid import GRID_GENES, grid_levels
from explorer.cli import main
from explorer.env import AsicDesignEnv
from explorer.ppa.problem import Problem
from explorer.results import summarize_run, write_outputs
from explorer.run import RunConfig, run_search
from explorer.storage import Storage, sqlite_url

BASELINES = ("random", "grid", "tpe", "nsga2", "sa", "ga")
SMALL = ("smolvlm-256m", "28nm", "low-power")


def _run(tmp: Path, agent: str, budget: int, seed: int = 0, **hp) -> tuple[Storage, list[dict]]:
    storage = Storage(sqlite_url(tmp / "results.sqlite"))
    cfg = RunConfig(*SMALL, agent=agent, budget=budget, seed=seed, hyperparams=hp,
                    checkpoint_every=50)
    result = run_search(cfg, storage, str(tmp), tmp / "checkpoint.pkl")
    return storage, storage.evaluations(result.run.id)


def test_registry() -> None:
    assert set(AGENT_NAMES) == {"sac-moe", *BASELINES}
    for name in BASELINES:
        assert issubclass(agent_class(name), Agent) and agent_class(name).name == name
    with pytest.raises(ValueError, match=r"^unknown agent 'x'; known: "):
        agent_class("x")


@pytest.mark.parametrize("agent", BASELINES)
def test_same_seed_same_design_json(tmp_path: Path, agent: str) -> None:
    """Two runs with one seed write byte-identical design.json; another seed differs."""
    budget = 60
    problem = Problem(SMALL[0], SMALL[1])
    outputs = []
    for sub, seed in (("a", 0), ("b", 0), ("c", 1)):
        d = tmp_path / sub
        storage, rows = _run(d, agent, budget, seed)
        summary = summarize_run(storage.find_run(str(d)), rows)
        write_outputs(d, summary, problem)
        outputs.append(((d / "design.json").read_bytes(), [r["reward"] for r in rows]))
        storage.close()
    assert outputs[0] == outputs[1]
    assert outputs[0][1] != outputs[2][1]


@pytest.mark.parametrize("agent", BASELINES)
def test_baseline_improves_on_its_first_designs(tmp_path: Path, agent: str) -> None:
    budget = 300
    _, rows = _run(tmp_path, agent, budget, population=30) if agent in ("ga", "nsga2") \
        else _run(tmp_path, agent, budget)
    r = np.array([x["reward"] for x in rows])
    assert len(r) == budget and np.isfinite(r).all()
    first = budget // 10
    assert r.max() > r[:first].max()
    if agent in ("tpe", "nsga2", "sa", "ga"):       # model-based / evolutionary: the mass moves
        assert np.median(r[-budget // 4:]) > np.median(r[:budget // 4])


@pytest.mark.parametrize("agent", BASELINES)
def test_state_dict_continues_identically(agent: str) -> None:
    """Restoring a state taken between episodes replays the same actions."""
    env = AsicDesignEnv(*SMALL)

    def episodes(a: Agent, first: int, n: int) -> list[list[np.ndarray]]:
        out = []
        for e in range(first, first + n):
            obs, info = env.reset(options={"episode": e})
            acts = []
            while True:
                act = a.act(obs, info)
                acts.append(np.concatenate([act["discrete"], act["continuous"]]))
                obs, r, term, _, info = env.step(act)
                a.observe(obs, act, r, obs, term, False, info)
                if term:
                    a.end_episode(r, info)
                    out.append(acts)
                    break
        return out

    kw = {"population": 4} if agent in ("ga", "nsga2") else {}
    a = make_agent(agent, env, seed=2, budget=40, **kw)
    episodes(a, 0, 8)
    state = a.state_dict()
    expected = episodes(a, 8, 8)
    b = make_agent(agent, env, seed=99, budget=40, **kw) if agent != "grid" else \
        make_agent(agent, env, seed=2, budget=40)
    b.load_state_dict(state)
    got = episodes(b, 8, 8)
    for x, y in zip(expected, got, strict=True):
        np.testing.assert_array_equal(np.array(x), np.array(y))


def test_grid_levels_cover_budget() -> None:
    for budget in (1, 7, 60, 500, 2000, 10_000):
        levels = grid_levels(budget)
        assert list(levels) == list(GRID_GENES)
        assert int(np.prod(list(levels.values()))) >= min(budget, 8 ** 6 * 2 * 6)
    assert grid_levels(2000)["mesh.weights"] == 2


def test_unknown_hyperparameter_is_input_error(tmp_path: Path) -> None:
    code = main(["explore", "--workload", "smolvlm-256m", "--node", "28nm", "--agent", "ga",
                 "--budget", "5", "--out", str(tmp_path / "x"), "--hp", "popsize=3"])
    assert code == 2


@pytest.mark.parametrize("args, message", [
    (["--agent", "nope"], "error: --agent must be one of "),
    (["--mode", "fast"], "error: --mode must be one of performance, low-power, not 'fast'"),
    (["--budget", "0"], "error: budget must be a positive integer, not 0"),
    (["--node", "4nm"], "error: "),
    (["--hp", "population"], "error: --hp must look like name=value, not 'population'"),
])
def test_explore_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--workload": "smolvlm-256m", "--node": "28nm", "--agent": "random", "--budget": "5",
            "--out": str(tmp_path / "run")}
    argv = ["explore"]
    for k, v in base.items():
        if k not in args:
            argv += [k, v]
    proc = subprocess.run([sys.executable, "-m", "explorer", *argv, *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_explore_command_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["explore", "--workload", "smolvlm-256m", "--node", "28nm", "--mode", "low-power",
            "--agent", "random", "--budget", "64", "--seed", "3", "--out", str(out), "--json"]
    proc = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["evaluations"] == 64
    for name in ("design.json", "ppa.json", "curve.csv", "curve.png", "pareto.png", "results.sqlite"):
        assert (out / name).stat().st_size > 0
    ppa = json.loads((out / "ppa.json").read_text())
    assert ppa["run"]["agent"] == "random" and ppa["reward_formula"][0].startswith("mode low-power")
    assert len((out / "curve.csv").read_text().splitlines()) == 65
    again = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 2 and "pass --resume" in again.stderr


def test_campaign_command(tmp_path: Path) -> None:
    out = tmp_path / "camp"
    argv = ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm,3nm", "--modes", "low-power",
            "--agents", "random", "--seeds", "0,1", "--budget", "32", "--jobs", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "explorer", *argv], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    md = (out / "summary.md").read_text()
    assert "## smolvlm-256m, low-power mode, agent random" in md
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("workload,mode,agent,node,seeds,median best reward")
    assert [r.split(",")[3] for r in rows[1:]] == ["28nm", "3nm"]
    assert len(list((out / "runs").glob("*/design.json"))) == 4
    again = subprocess.run([sys.executable, "-m", "explorer", *argv, "--resume"], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (out / "summary.md").read_text() == md
    bad = subprocess.run([sys.executable, "-m", "explorer", *argv[:-2], "--out", str(tmp_path / "b"),
                          "--agents", "random,zzz"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --agents: unknown agent 'zzz'")


def test_summarize_run_picks() -> None:
    from explorer.storage import RunRecord

    run = RunRecord(id=1, name="r", agent="random", seed=0, budget=4, workload="w", node="3nm",
                    mode="performance", seq_len=1, batch=1, kv_len=1, hyperparams="{}",
                    git_revision="x", started_at="t", finished_at=None, status="finished",
                    checkpoint_episode=4, reward_formula="", schema_version=1)

    def row(e: int, reward: float, adm: bool, perf: float, power: float) -> dict:
        return {"episode": e, "reward": reward, "admissible": adm, "perf_n": perf,
                "power_n": power, "area_n": 0.1}

    rows = [row(0, 1.0, False, 0.9, 0.9), row(1, 0.5, True, 0.2, 0.1), row(2, 0.7, True, 0.8, 0.6),
            row(3, 0.6, True, 0.5, 0.2)]
    s = summarize_run(run, rows)
    assert s.best_episode == 0 and s.best_reward == 1.0
    # front {1, 2, 3}; front-normalised perf (0, 1, 0.5), power (0, 1, 0.2):
    # 0.4 perf - 0.4 power = 0, 0, 0.12 -> episode 3
    assert {p.episode for p in s.front} == {1, 2, 3} and s.pick_episode == 3
    assert s.pick_method == "pareto"
    none = summarize_run(run, [dict(r, admissible=False) for r in rows])
    assert none.pick_episode == 0 and none.pick_method.startswith("best reward")
    np.testing.assert_array_equal(s.curve(), [1.0, 1.0, 1.0, 1.0])
