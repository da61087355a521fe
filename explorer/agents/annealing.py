"""Simulated annealing over the genome (Kirkpatrick, Gelatt & Vecchi 1983).

State: one genome (all genes of :data:`explorer.agents.genome.GENES`). Each episode
evaluates a neighbour: ``1 + Poisson(moves - 1)`` genes, each either redrawn uniformly
(probability ``redraw``) or moved by a Gaussian step of ``sigma`` x its range, reflected at
the bounds. Metropolis acceptance on the reward at temperature
``T(e) = t_start * (t_end / t_start) ** (e / budget)`` (geometric cooling). The first
episode is a uniformly random genome.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .genome import GENES, Gene, GenomeAgent

__all__ = ["AnnealingAgent"]

_LOW = np.array([g.low for g in GENES])
_INDEX = {g.name: i for i, g in enumerate(GENES)}


def _reflect(x: np.ndarray) -> np.ndarray:
    """Fold values back into [low, 1]."""
    span = 1.0 - _LOW
    y = np.mod(x - _LOW, 2 * span)
    return _LOW + np.where(y > span, 2 * span - y, y)


class AnnealingAgent(GenomeAgent):
    """Simulated annealing maximising the reward (one episode at a time).

    Parameters
    ----------
    t_start, t_end : float
        Initial and final temperature, in reward units.
    moves : float
        Mean number of genes changed per neighbour.
    sigma : float
        Gaussian step as a fraction of a gene's range.
    redraw : float
        Probability that a changed gene is redrawn uniformly instead of stepped.
    """

    name = "sa"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, t_start: float = 1.0,
                 t_end: float = 0.01, moves: float = 2.0, sigma: float = 0.15,
                 redraw: float = 0.2) -> None:
        super().__init__(env, seed, budget=budget)
        if not 0 < t_end <= t_start:
            raise ValueError(f"temperatures must satisfy 0 < t_end <= t_start, not {t_end}, {t_start}")
        if not moves >= 1 or not sigma > 0 or not 0 <= redraw <= 1:
            raise ValueError("moves must be >= 1, sigma > 0 and redraw in [0, 1]")
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.moves, self.sigma, self.redraw = float(moves), float(sigma), float(redraw)
        self.rng = np.random.default_rng(self.seed)
        self.current: np.ndarray | None = None
        self.current_reward = -math.inf
        self.candidate: np.ndarray | None = None
        self.episodes = 0

    def temperature(self, episode: int) -> float:
        horizon = max(self.budget or 2000, 1)
        return self.t_start * (self.t_end / self.t_start) ** min(episode / horizon, 1.0)

    def _neighbour(self) -> np.ndarray:
        if self.current is None:
            return _LOW + self.rng.random(len(GENES)) * (1.0 - _LOW)
        x = self.current.copy()
        k = min(1 + int(self.rng.poisson(self.moves - 1.0)), len(GENES))
        idx = self.rng.choice(len(GENES), size=k, replace=False)
        span = 1.0 - _LOW[idx]
        redraw = self.rng.random(k) < self.redraw
        fresh = _LOW[idx] + self.rng.random(k) * span
        step = x[idx] + self.rng.normal(0.0, self.sigma, k) * span
        x[idx] = np.where(redraw, fresh, step)
        return _reflect(x)

    def gene_values(self, episode: int, genes: tuple[Gene, ...]) -> Mapping[str, float]:
        if self.candidate is None:
            self.candidate = self._neighbour()
        return {g.name: float(self.candidate[_INDEX[g.name]]) for g in genes}

    def tell(self, episode: int, total_reward: float, info: Mapping[str, Any]) -> None:
        delta = total_reward - self.current_reward
        t = self.temperature(self.episodes)
        if delta >= 0 or self.rng.random() < math.exp(delta / t):
            self.current, self.current_reward = self.candidate, total_reward
        self.candidate = None
        self.episodes += 1

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "current": self.current,
                "current_reward": self.current_reward, "candidate": self.candidate,
                "episodes": self.episodes}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.current = None if state["current"] is None else np.array(state["current"])
        self.current_reward = float(state["current_reward"])
        self.candidate = None if state["candidate"] is None else np.array(state["candidate"])
        self.episodes = int(state["episodes"])

    def hyperparameters(self) -> dict[str, Any]:
        return {"t_start": self.t_start, "t_end": self.t_end, "moves": self.moves,
                "sigma": self.sigma, "redraw": self.redraw}
