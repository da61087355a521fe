"""Replay memory of the SAC + MoE agent: episode-wise replay (optionally prioritised), elites."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Transition", "ReplayBatch", "ReplayBuffer", "EliteBuffer", "RunningMoments"]


@dataclass(frozen=True)
class Transition:
    """One environment step as the agent saw it (the mask is the one the action obeyed;
    discrete masks are flat: the per-dimension boolean arrays concatenated)."""

    obs: np.ndarray
    mask: np.ndarray
    action_discrete: np.ndarray
    action_continuous: np.ndarray
    continuous_mask: np.ndarray
    reward: float
    next_obs: np.ndarray
    next_mask: np.ndarray
    next_continuous_mask: np.ndarray
    terminated: bool


class ReplayBatch(NamedTuple):
    """A sampled mini-batch (numpy arrays; the learner converts them to tensors)."""

    obs: np.ndarray
    """(B, obs_dim) float32."""
    mask: np.ndarray
    """(B, F) bool: the values allowed at ``obs``, all dimensions concatenated."""
    action_discrete: np.ndarray
    """(B, D) int64."""
    action_continuous: np.ndarray
    """(B, C) float32 in [−1, 1]."""
    continuous_mask: np.ndarray
    """(B, C) bool: the continuous dims the environment read at this step."""
    reward: np.ndarray
    """(B,) float32, raw (the learner normalises)."""
    next_obs: np.ndarray
    """(B, obs_dim) float32."""
    next_mask: np.ndarray
    """(B, F) bool."""
    next_continuous_mask: np.ndarray
    """(B, C) bool."""
    terminated: np.ndarray
    """(B,) float32, 1 where the episode ended at this step (no bootstrap)."""
    mc_return: np.ndarray
    """(B,) float32: the discounted return from this step to the episode's end."""
    weights: np.ndarray
    """(B,) float32 importance-sampling weights (all 1 without prioritisation)."""
    indices: np.ndarray
    """(B,) int64 storage slots, for priority updates."""


_FIELDS = ("obs", "mask", "action_discrete", "action_continuous", "continuous_mask", "reward",
           "next_obs", "next_mask", "next_continuous_mask", "terminated", "mc_return")


def _returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = Σ_j γ^j r_{t+j}, accumulated in float64."""
    out = np.empty(len(rewards), dtype=np.float64)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = float(rewards[t]) + gamma * acc
        out[t] = acc
    return out


def _stack(episode: list[Transition], gamma: float) -> dict[str, np.ndarray]:
    rewards = np.array([t.reward for t in episode], dtype=np.float64)
    return {
        "obs": np.stack([t.obs for t in episode]).astype(np.float32),
        "mask": np.stack([t.mask for t in episode]).astype(bool),
        "action_discrete": np.stack([t.action_discrete for t in episode]).astype(np.int64),
        "action_continuous": np.stack([t.action_continuous for t in episode]).astype(
            np.float32),
        "continuous_mask": np.stack([t.continuous_mask for t in episode]).astype(bool),
        "reward": rewards.astype(np.float32),
        "next_obs": np.stack([t.next_obs for t in episode]).astype(np.float32),
        "next_mask": np.stack([t.next_mask for t in episode]).astype(bool),
        "next_continuous_mask": np.stack([t.next_continuous_mask for t in episode]).astype(bool),
        "terminated": np.array([t.terminated for t in episode], dtype=np.float32),
        "mc_return": _returns(rewards, gamma).astype(np.float32),
    }


class _SumTree:
    """Binary sum tree over ``capacity`` leaves (leaf i at node capacity_pow2 + i)."""

    def __init__(self, capacity: int) -> None:
        self.leaves = max(2, 1 << (capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    def total(self) -> float:
        return float(self.tree[1])

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        node = np.asarray(idx, dtype=np.int64) + self.leaves
        self.tree[node] = values
        # All leaves sit at one depth, so each pass refreshes one level of parents.
        while True:
            node = np.unique(node // 2)
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            if node[0] == 1:
                return

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaves whose cumulative-priority interval contains each ``prefix`` value."""
        node = np.ones(len(prefix), dtype=np.int64)
        prefix = prefix.astype(np.float64).copy()
        while node[0] < self.leaves:
            left = 2 * node
            go_right = prefix >= self.tree[left]
            prefix = np.where(go_right, prefix - self.tree[left], prefix)
            node = np.where(go_right, left + 1, left)
        return node - self.leaves


class ReplayBuffer:
    """Circular replay memory filled one finished episode at a time.

    Episodes are committed whole so every stored transition already carries its
    Monte-Carlo return. With ``prioritized`` the sampling follows Schaul et al. (2016),
    proportional variant: P(i) ∝ p_i^α, weights (N·P(i))^−β / max, new transitions get the
    current maximum priority (the paper's PER settings, Tab. 5).
    """

    def __init__(self, capacity: int, obs_dim: int, n_discrete: int, n_flat: int,
                 n_continuous: int, *, gamma: float, prioritized: bool = False,
                 per_alpha: float = 0.6, per_beta_start: float = 0.4,
                 per_beta_increment: float = 0.001) -> None:
        self.capacity = capacity
        self.gamma = gamma
        self.prioritized = prioritized
        self.per_alpha = per_alpha
        self.per_beta = per_beta_start
        self.per_beta_increment = per_beta_increment
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "mask": np.zeros((capacity, n_flat), bool),
            "action_discrete": np.zeros((capacity, n_discrete), np.int64),
            "action_continuous": np.zeros((capacity, n_continuous), np.float32),
            "continuous_mask": np.zeros((capacity, n_continuous), bool),
            "reward": np.zeros(capacity, np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "next_mask": np.zeros((capacity, n_flat), bool),
            "next_continuous_mask": np.zeros((capacity, n_continuous), bool),
            "terminated": np.zeros(capacity, np.float32),
            "mc_return": np.zeros(capacity, np.float32),
        }
        self.pos = 0
        self.size = 0
        self.max_priority = 1.0
        self.tree = _SumTree(capacity) if prioritized else None

    def __len__(self) -> int:
        return self.size

    def add_episode(self, episode: list[Transition]) -> dict[str, np.ndarray]:
        """Store a finished episode; returns its stacked arrays (for the elite buffer)."""
        arrays = _stack(episode, self.gamma)
        n = len(episode)
        slots = (self.pos + np.arange(n)) % self.capacity
        for name in _FIELDS:
            self.data[name][slots] = arrays[name]
        if self.tree is not None:
            self.tree.set(slots, np.full(n, self.max_priority ** self.per_alpha))
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return arrays

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.tree is None:
            idx = rng.integers(0, self.size, size=batch_size)
            weights = np.ones(batch_size, np.float32)
        else:
            total = self.tree.total()
            # Stratified: one uniform draw per equal slice of the priority mass.
            bounds = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
            idx = np.minimum(self.tree.find(bounds), self.size - 1)
            p = self.tree.tree[idx + self.tree.leaves] / total
            weights = (self.size * np.maximum(p, 1e-12)) ** (-self.per_beta)
            weights = (weights / weights.max()).astype(np.float32)
            self.per_beta = min(1.0, self.per_beta + self.per_beta_increment)
        return ReplayBatch(**{name: self.data[name][idx] for name in _FIELDS},
                           weights=weights, indices=idx.astype(np.int64))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """p_i = (|δ_i| + 1e-6)^α (paper Tab. 5); no-op without prioritisation."""
        if self.tree is None:
            return
        priority = np.abs(td_errors).astype(np.float64) + 1e-6
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.set(indices, priority ** self.per_alpha)

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {
            "data": {name: arr[:n].copy() for name, arr in self.data.items()},
            "pos": self.pos, "size": n, "max_priority": self.max_priority,
            "per_beta": self.per_beta,
            "priorities": None if self.tree is None
            else self.tree.tree[self.tree.leaves:self.tree.leaves + n].copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        if n > self.capacity:
            raise ValueError(f"replay state holds {n} transitions, capacity is {self.capacity}")
        for name, arr in state["data"].items():
            if arr.shape[1:] != self.data[name].shape[1:]:
                raise ValueError(f"replay field {name} has shape {arr.shape[1:]}, "
                                 f"expected {self.data[name].shape[1:]}")
            self.data[name][:n] = arr
        self.pos, self.size = int(state["pos"]), n
        self.max_priority = float(state["max_priority"])
        self.per_beta = float(state["per_beta"])
        if self.tree is not None:
            self.tree = _SumTree(self.capacity)
            if n and state["priorities"] is not None:
                self.tree.set(np.arange(n), state["priorities"])


class EliteBuffer:
    """The ``capacity`` episodes with the highest returns seen so far (ties: earliest).

    An episode offered with a ``key`` equal to a kept episode's (the same design built
    again, e.g. by an anchored episode whose redrawn gene had no effect) is not kept
    twice, so the buffer stays a set of distinct designs.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.episodes: list[tuple[float, int, dict[str, np.ndarray], str | None]] = []
        self._count = 0

    def __len__(self) -> int:
        return len(self.episodes)

    def add(self, episode_return: float, arrays: dict[str, np.ndarray],
            key: str | None = None) -> bool:
        """Offer an episode; True if it was kept."""
        self._count += 1
        if self.capacity == 0:
            return False
        if key is not None and any(e[3] == key for e in self.episodes):
            return False
        entry = (float(episode_return), self._count, arrays, key)
        if len(self.episodes) < self.capacity:
            self.episodes.append(entry)
        elif episode_return > self.episodes[-1][0]:
            self.episodes[-1] = entry
        else:
            return False
        self.episodes.sort(key=lambda e: (-e[0], e[1]))
        return True

    def threshold(self) -> float:
        """The lowest kept return (−inf while not full)."""
        if len(self.episodes) < self.capacity:
            return float("-inf")
        return self.episodes[-1][0]

    def sample(self, batch_size: int, rng: np.random.Generator) -> ReplayBatch:
        if not self.episodes:
            raise ValueError("cannot sample from an empty elite buffer")
        merged = {name: np.concatenate([e[2][name] for e in self.episodes])
                  for name in _FIELDS}
        idx = rng.integers(0, len(merged["reward"]), size=batch_size)
        return ReplayBatch(**{name: merged[name][idx] for name in _FIELDS},
                           weights=np.ones(batch_size, np.float32),
                           indices=idx.astype(np.int64))

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": [(r, i, {k: v.copy() for k, v in a.items()}, key)
                             for r, i, a, key in self.episodes], "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes = [(float(e[0]), int(e[1]), dict(e[2]), e[3] if len(e) > 3 else None)
                         for e in state["episodes"]]
        self._count = int(state["count"])


class RunningMoments:
    """Running mean and variance (Welford, float64)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return (self.m2 / (self.count - 1)) ** 0.5 if self.count > 1 else 0.0

    def state_dict(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.count = int(state["count"])
        self.mean = float(state["mean"])
        self.m2 = float(state["m2"])
