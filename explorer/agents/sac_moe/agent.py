"""The ``sac-moe`` search agent: hybrid-action SAC with a Mixture-of-Experts actor."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from ..base import Action, Agent, EnvSpaces
from .anchor import AnchorPlan, anchored_step, plan_anchor, restrict_mask
from .buffer import EliteBuffer, ReplayBuffer, RunningMoments, Transition
from .config import SacMoeConfig
from .train_sac import SacMoeLearner

__all__ = ["SacMoeAgent"]


class SacMoeAgent(Agent):
    """Soft Actor-Critic for the hybrid design actions, MoE actor, replay of whole episodes.

    Acting: uniformly random (mask-respecting) actions for the first
    ``config.learning_starts`` steps, then the stochastic policy (with probability ε a
    random action, if ε > 0). With the probability :meth:`anchor_prob` an episode is
    *elite-anchored* instead: it replays an elite episode and the policy redraws only a
    few of its genes (``anchor.py``). Learning: each finished episode enters the replay buffer with
    its Monte-Carlo returns and is offered to the elite buffer; then the update credit
    accumulated at ``updates_per_step`` per step is spent on gradient updates.

    Parameters
    ----------
    env : gym.Env or EnvSpaces
        Only its spaces are kept.
    seed : int
        Seeds network initialisation, policy sampling (a private ``torch.Generator``) and
        replay sampling / ε decisions (a private ``np.random.Generator``).
    budget : int or None
        Evaluations of the run: the horizon of the target-entropy schedule (the other
        schedules count steps).
    config : SacMoeConfig or None
        Hyper-parameters; keyword arguments override its fields. Unknown names raise
        ``TypeError``.

    Notes
    -----
    Construction sets ``torch.set_num_threads(config.torch_threads)`` and
    ``torch.use_deterministic_algorithms(True)``, both process-wide: with one thread the
    CPU kernels used here give bit-identical results run to run.
    """

    name: ClassVar[str] = "sac-moe"
    batch_size: int = 1

    def __init__(self, env: gym.Env | EnvSpaces, seed: int, *, budget: int | None = None,
                 config: SacMoeConfig | None = None, **hyperparams: Any) -> None:
        super().__init__(env, seed, budget=budget)
        if config is not None and not isinstance(config, SacMoeConfig):
            raise TypeError(f"config must be a SacMoeConfig, not {config!r}")
        unknown = sorted(set(hyperparams) - set(SacMoeConfig.field_names()))
        if unknown:
            raise TypeError(f"unknown sac-moe hyperparameter(s): {', '.join(unknown)}")
        if "gate_features" in hyperparams and isinstance(hyperparams["gate_features"], list):
            hyperparams["gate_features"] = tuple(hyperparams["gate_features"])
        self.config = dataclasses.replace(config or SacMoeConfig(), **hyperparams)
        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        torch.use_deterministic_algorithms(False)

        spaces = self.spaces
        self.obs_dim = int(np.prod(spaces.observation_space.shape))
        self.nvec = tuple(int(n) for n in spaces.nvec)
        self.n_continuous = spaces.n_continuous
        self.learner = SacMoeLearner(self.obs_dim, self.nvec, self.n_continuous, cfg, self.seed,
                                     gate_index=self._gate_index(spaces, cfg.gate_features))
        # Without discrete dims the learner stands in one dim of one value (D' = 1).
        self._nvec_internal = self.nvec or (1,)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.obs_dim, len(self._nvec_internal),
                                   sum(self._nvec_internal), self.n_continuous, gamma=cfg.gamma,
                                   prioritized=cfg.prioritized, per_alpha=cfg.per_alpha,
                                   per_beta_start=cfg.per_beta_start,
                                   per_beta_increment=cfg.per_beta_increment)
        self.elite = EliteBuffer(cfg.elite_episodes)
        self.returns = RunningMoments()
        self.rng = np.random.default_rng(self.seed)
        self.total_steps = 0
        self.episodes = 0
        self.update_credit = 0.0
        self.last_metrics: dict[str, Any] = {}
        self._episode: list[Transition] = []
        self._last_masks: tuple[np.ndarray, np.ndarray] | None = None
        self._plan: AnchorPlan | None = None
        self.anchored_episodes = 0

    # -- observation / mask plumbing ----------------------------------------------------------

    def _gate_index(self, spaces: EnvSpaces, names: tuple[str, ...]) -> list[int] | None:
        index: list[int] = []
        for name in names:
            part = spaces.obs_slices.get(name)
            if part is not None:
                index.extend(range(self.obs_dim)[part])
        return sorted(set(index)) or None

    def _masks(self, info: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(flat discrete mask (F,), continuous mask (C,)) from ``info``.

        A missing ``action_mask`` (e.g. after the terminal step) allows every value.
        """
        given = info.get("action_mask")
        if given is None or not self.nvec:
            mask = np.ones(sum(self._nvec_internal), bool)
        else:
            if len(given) != len(self.nvec):
                raise ValueError(f"info['action_mask'] has {len(given)} dims, "
                                 f"the action space {len(self.nvec)}")
            parts = []
            for j, (m, n) in enumerate(zip(given, self.nvec, strict=True)):
                m = np.asarray(m, dtype=bool)
                if m.shape != (n,) or not m.any():
                    raise ValueError(f"info['action_mask'][{j}] must be {n} booleans with "
                                     f"at least one True")
                parts.append(m)
            mask = np.concatenate(parts)
        cmask = info.get("continuous_mask")
        if cmask is None:
            cmask = np.ones(self.n_continuous, bool)
        return mask, np.asarray(cmask, dtype=bool).reshape(self.n_continuous)

    def _transform(self, reward: float) -> float:
        if self.config.reward_transform == "symlog":
            return math.copysign(math.log1p(abs(reward)), reward)
        return reward

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32).reshape(self.obs_dim)

    def epsilon(self) -> float:
        """Current probability of a random action after warm-up (linear decay)."""
        cfg = self.config
        frac = min(1.0, max(0, self.total_steps - cfg.learning_starts) / cfg.epsilon_decay_steps)
        return cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)

    # -- Agent interface ----------------------------------------------------------------------

    def anchor_prob(self) -> float:
        """Current probability of an elite-anchored episode (linear over the budget)."""
        cfg = self.config
        if self.budget is None:
            return cfg.anchor_prob_start
        frac = min(1.0, self.episodes / self.budget)
        return cfg.anchor_prob_start + frac * (cfg.anchor_prob_end - cfg.anchor_prob_start)

    def _maybe_anchor(self) -> None:
        """At an episode's first step: decide whether it is anchored, and on which elite."""
        cfg = self.config
        self._plan = None
        if self.total_steps < cfg.learning_starts or len(self.elite) == 0:
            return
        p = self.anchor_prob()
        if p <= 0 or self.rng.random() >= p:
            return
        rank = int(self.rng.integers(0, min(cfg.anchor_top, len(self.elite))))
        self._plan = plan_anchor(self.elite.episodes[rank][2], rank, self._nvec_internal,
                                 cfg.anchor_max_genes, self.rng)

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> Action:
        mask, cmask = self._masks(info)
        self._last_masks = (mask, cmask)
        step = len(self._episode)
        if step == 0:
            self._maybe_anchor()
        warmup = self.total_steps < self.config.learning_starts
        if self._plan is not None:
            cfg = self.config
            policy_mask = restrict_mask(self._plan, step, mask, self._nvec_internal,
                                        cfg.anchor_window, cfg.sil_ordinal_min_options)
            action_d, action_c = self.learner.act(self._obs(obs), policy_mask)
            action_d, action_c = anchored_step(self._plan, step, mask, cmask, action_d,
                                               action_c, self._nvec_internal)
            if not self.nvec:
                action_d = action_d[:0]
            return {"discrete": action_d, "continuous": action_c}
        eps = self.epsilon()
        if warmup or (eps > 0 and self.rng.random() < eps):
            action_d, action_c = self.learner.random_action(mask)
        else:
            action_d, action_c = self.learner.act(self._obs(obs), mask)
        if not self.nvec:
            action_d = action_d[:0]
        return {"discrete": action_d, "continuous": action_c}

    def observe(self, obs: np.ndarray, action: Action, reward: float, next_obs: np.ndarray,
                terminated: bool, truncated: bool, info: Mapping[str, Any]) -> None:
        if self._last_masks is None:
            raise RuntimeError("observe() called before act()")
        mask, cmask = self._last_masks
        next_mask, next_cmask = self._masks(info)
        action_d = np.asarray(action["discrete"], np.int64).reshape(len(self.nvec))
        if not self.nvec:
            action_d = np.zeros(1, np.int64)
        self._episode.append(Transition(
            obs=self._obs(obs), mask=mask, action_discrete=action_d,
            action_continuous=np.asarray(action["continuous"], np.float32).reshape(
                self.n_continuous),
            continuous_mask=cmask, reward=self._transform(float(reward)),
            next_obs=self._obs(next_obs),
            next_mask=next_mask, next_continuous_mask=next_cmask,
            terminated=bool(terminated)))
        self.total_steps += 1
        if self.total_steps > self.config.learning_starts:
            self.update_credit += self.config.updates_per_step

    def end_episode(self, total_reward: float, info: Mapping[str, Any]) -> None:
        cfg = self.config
        self.episodes += 1
        if not self._episode:
            return
        arrays = self.buffer.add_episode(self._episode)
        episode_return = float(arrays["reward"].astype(np.float64).sum())
        self.elite.add(episode_return, arrays, _design_key(info, arrays))
        self.returns.update(episode_return)
        self._episode = []
        if self._plan is not None:
            self.anchored_episodes += 1
            self._plan = None
        if len(self.buffer) < cfg.batch_size:
            return
        scale = self.reward_scale()
        use_elite = cfg.sil_coef > 0 and len(self.elite) > 0
        while self.update_credit >= 1.0:
            self.update_credit -= 1.0
            batch = self.buffer.sample(cfg.batch_size, self.rng)
            elite = self.elite.sample(cfg.sil_batch_size, self.rng) if use_elite else None
            self.last_metrics, td_abs = self.learner.update(
                batch, scale, elite, self.entropy_ratio(), self.entropy_continuous())
            self.buffer.update_priorities(batch.indices, td_abs)

    def entropy_ratio(self) -> float:
        """Current discrete target-entropy ratio (linear schedule over the budget if set)."""
        cfg = self.config
        end = cfg.target_entropy_discrete_ratio_end
        if end is None or self.budget is None:
            return cfg.target_entropy_discrete_ratio
        frac = min(1.0, self.episodes / self.budget)
        return cfg.target_entropy_discrete_ratio + frac * (end - cfg.target_entropy_discrete_ratio)

    def entropy_continuous(self) -> float:
        """Current per-dimension continuous target entropy (schedule over the budget)."""
        cfg = self.config
        end = cfg.target_entropy_continuous_end
        if end is None or self.budget is None:
            return cfg.target_entropy_continuous
        frac = min(1.0, self.episodes / self.budget)
        return cfg.target_entropy_continuous + frac * (end - cfg.target_entropy_continuous)

    def reward_scale(self) -> float:
        """Divisor of rewards: the standard deviation of episode returns so far (≥ 1e-8)."""
        if not self.config.normalize_rewards or self.returns.count < 2:
            return 1.0
        return max(self.returns.std, 1e-8)

    # -- checkpointing ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "learner": self.learner.state_dict(),
            "buffer": self.buffer.state_dict(),
            "elite": self.elite.state_dict(),
            "returns": self.returns.state_dict(),
            "rng": self.rng.bit_generator.state,
            "total_steps": self.total_steps,
            "episodes": self.episodes,
            "update_credit": self.update_credit,
            "episode": list(self._episode),
            "last_masks": self._last_masks,
            "plan": None if self._plan is None else self._plan.state(),
            "anchored_episodes": self.anchored_episodes,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = dict(state["config"])
        saved["gate_features"] = tuple(saved["gate_features"])
        if SacMoeConfig(**saved) != self.config:
            raise ValueError("checkpoint was written with different sac-moe hyperparameters")
        self.learner.load_state_dict(state["learner"])
        self.buffer.load_state_dict(state["buffer"])
        self.elite.load_state_dict(state["elite"])
        self.returns.load_state_dict(state["returns"])
        self.rng.bit_generator.state = state["rng"]
        self.total_steps = int(state["total_steps"])
        self.episodes = int(state["episodes"])
        self.update_credit = float(state["update_credit"])
        self._episode = list(state["episode"])
        self._last_masks = state["last_masks"]
        plan = state.get("plan")
        self._plan = None if plan is None else AnchorPlan.from_state(plan)
        self.anchored_episodes = int(state.get("anchored_episodes", 0))

    def hyperparameters(self) -> dict[str, Any]:
        out = dataclasses.asdict(self.config)
        out["gate_features"] = list(out["gate_features"])
        return out


def _design_key(info: Mapping[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """Identity of the episode's design: the environment's ``info["choices"]`` if it
    reports them (two action sequences can build one design), else the actions taken."""
    choices = info.get("choices")
    if isinstance(choices, Mapping):
        return json.dumps(choices, sort_keys=True, default=str)
    return (arrays["action_discrete"].tobytes() + arrays["action_continuous"].tobytes()).hex()
