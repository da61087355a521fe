"""The search loop: budget, seeding, storage, checkpoint/resume and progress for any agent.

One evaluation = one episode = one PPA evaluation. Agents with ``batch_size`` B > 1 run
B episodes in lockstep and their designs are evaluated in one vectorised PPA call; every
evaluation is committed to the results database as soon as its batch is evaluated.

Checkpoints: every ``checkpoint_every`` evaluations (at batch boundaries) and at the end,
``{"episode", "agent": agent.state_dict(), "config"}`` is pickled atomically (temporary
file, fsync, rename) and the run's ``checkpoint_episode`` updated. Resume = *replay*:
the agent is restored from the checkpoint and the loop continues from its episode; for
episodes that are already stored (evaluated after the checkpoint, before the crash) the
design is proposed and evaluated again — the agent, environment and PPA model are
deterministic — and must match its stored row (choices and reward) or the resume stops
with an error; they are not stored twice. The final result is therefore identical to an
uninterrupted run, and nothing stored is lost (tests/test_storage.py kills a run with
SIGKILL to check both).
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna

from .agents.base import AGENT_NAMES, make_agent
from .env import AsicDesignEnv
from .errors import InputError
from .ppa.problem import Problem
from .reward import MODES, formula_text
from .space import to_batch
from .storage import Evaluation, RunRecord, Storage

__all__ = ["RunConfig", "RunResult", "run_search", "git_revision", "atomic_write_bytes"]

log = logging.getLogger(__name__)

#: ``progress(done, total, best_reward)`` after every evaluated batch.
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class RunConfig:
    """What one search run computes (its identity in the results database)."""

    workload: str
    node: str
    mode: str
    agent: str
    budget: int
    seed: int = 0
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    seq_len: int = 2048
    batch: int = 1
    kv_len: int = 2048
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.agent not in AGENT_NAMES:
            raise InputError(f"--agent must be one of {', '.join(AGENT_NAMES)}, not {self.agent!r}")
        for name in ("budget", "seq_len", "batch", "kv_len", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive integer, not {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, not {self.seed!r}")
        object.__setattr__(self, "hyperparams", dict(self.hyperparams))

    def storage_config(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("agent", "seed", "budget", "workload", "node", "mode",
                                           "seq_len", "batch", "kv_len")}
        d["hyperparams"] = json.dumps(self.hyperparams, sort_keys=True)
        return d


@dataclass(frozen=True)
class RunResult:
    """A finished run: its database row and how many episodes this call evaluated."""

    run: RunRecord
    evaluated: int
    replayed: int
    resumed_from: int


def git_revision() -> str:
    """Commit of the source tree (``unknown`` outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path: Path, config: RunConfig) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with open(path, "rb") as f:
        ckpt = pickle.load(f)
    def identity(c: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k != "checkpoint_every"}

    if identity(ckpt.get("config", {})) != identity(asdict(config)):
        raise InputError(f"checkpoint {path} belongs to a different run configuration")
    return ckpt


def run_search(config: RunConfig, storage: Storage, name: str, checkpoint_path: Path, *,
               resume: bool = False, progress: Progress | None = None) -> RunResult:
    """Run (or resume) the search ``name`` of ``config``, storing every evaluation."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = Problem(workload=config.workload, node=config.node, seq_len=config.seq_len,
                      batch=config.batch, kv_len=config.kv_len)
    env = AsicDesignEnv(problem=problem, mode=config.mode)
    try:
        agent = make_agent(config.agent, env, config.seed, budget=config.budget, **config.hyperparams)
    except TypeError as e:          # an unknown or mistyped hyperparameter
        raise InputError(f"agent {config.agent}: {e}") from None
    record = storage.find_run(name)
    start = 0
    if record is not None:
        if not resume:
            raise InputError(f"run {name!r} already exists in {storage.url}; pass --resume to "
                             "continue it or choose another --out")
        if record.config() != config.storage_config():
            raise InputError(f"run {name!r} in {storage.url} was started with a different "
                             "configuration (agent, seed, budget, problem or hyperparameters)")
        ckpt = _load_checkpoint(checkpoint_path, config)
        if ckpt is not None:
            agent.load_state_dict(ckpt["agent"])
            start = int(ckpt["episode"])
    else:
        record = storage.create_run(name, config.storage_config(), git_revision(),
                                    formula_text(config.mode))
    stored = {r["episode"]: r for r in storage.evaluations(record.id, start=start)}
    lanes = [env] + [AsicDesignEnv(problem=problem, mode=config.mode)
                     for _ in range(max(agent.batch_size, 1) - 1)]
    best = max((r["reward"] for r in storage.evaluations(record.id, stop=start)), default=-math.inf)
    episode, evaluated, replayed = start, 0, 0
    next_ckpt = (start // config.checkpoint_every + 1) * config.checkpoint_every
    while episode < config.budget:
        n = min(len(lanes), config.budget - episode)
        rows, rewards = _batch(agent, lanes[:n], problem, episode)
        new = [r for r in rows if r.episode not in stored]
        for r in rows:
            if r.episode in stored:
                _check_replay(stored[r.episode], r)
                replayed += 1
        storage.add_evaluations(record.id, new)
        evaluated += len(new)
        best = max(best, *rewards)
        episode += n
        if progress is not None:
            progress(episode, config.budget, best)
        if episode >= next_ckpt or episode >= config.budget:
            ckpt = {"episode": episode, "agent": agent.state_dict(), "config": asdict(config)}
            atomic_write_bytes(checkpoint_path, pickle.dumps(ckpt, protocol=pickle.HIGHEST_PROTOCOL))
            storage.set_checkpoint(record.id, episode)
            next_ckpt = (episode // config.checkpoint_every + 1) * config.checkpoint_every
    storage.finish_run(record.id)
    final = storage.find_run(name)
    assert final is not None
    return RunResult(run=final, evaluated=evaluated, replayed=replayed, resumed_from=start)


def _batch(agent: Any, lanes: list[AsicDesignEnv], problem: Problem,
           first: int) -> tuple[list[Evaluation], list[float]]:
    """Run episodes ``first ..`` on ``lanes`` in lockstep; one PPA call for all designs."""
    obs, infos = zip(*(env.reset(options={"episode": first + i}) for i, env in enumerate(lanes)),
                     strict=True)
    obs, infos = list(obs), list(infos)
    last: list[tuple[Any, Any]] = [(None, None)] * len(lanes)
    done = [False] * len(lanes)
    while not all(done):
        for i, env in enumerate(lanes):
            if done[i]:
                continue
            action = agent.act(obs[i], infos[i])
            next_obs, next_info, complete = env.advance(action)
            if complete:
                last[i], done[i] = (obs[i], action), True
            else:
                agent.observe(obs[i], action, 0.0, next_obs, False, False, next_info)
                obs[i], infos[i] = next_obs, next_info
    result = problem.evaluate(to_batch([env.choices for env in lanes], lanes[0].space_context))
    rows, rewards, ends = [], [], []
    for i, env in enumerate(lanes):
        t_obs, reward, terminated, truncated, info = env.finish(result, i)
        agent.observe(last[i][0], last[i][1], reward, t_obs, terminated, truncated, info)
        rows.append(Evaluation(episode=first + i, reward=reward, feasible=info["feasible"],
                               admissible=info["admissible"], violations=info["violations"],
                               objectives=info["objectives"], terms=info["terms"],
                               choices=info["choices"], ppa=info["ppa"]))
        rewards.append(reward)
        ends.append((reward, info))
    for reward, info in ends:
        agent.end_episode(reward, info)
    return rows, rewards


def _check_replay(stored: Mapping[str, Any], row: Evaluation) -> None:
    same_choices = json.loads(json.dumps(dict(row.choices), sort_keys=True)) == stored["choices"]
    if not same_choices or not math.isclose(stored["reward"], row.reward, rel_tol=1e-12, abs_tol=1e-12):
        raise RuntimeError(f"resume diverged at episode {row.episode}: the agent proposed another "
                           "design than the stored one (non-deterministic agent or changed code)")
