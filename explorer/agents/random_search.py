"""Random search: every step draws each legal option / continuous value uniformly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Action, Agent

__all__ = ["RandomAgent"]


class RandomAgent(Agent):
    """Uniform over the legal options of every discrete dim (the masks), uniform in
    [-1, 1] for continuous dims; the paper's random baseline.

    Parameters
    ----------
    batch : int
        Episodes run in lockstep (their designs are evaluated in one PPA call). Lanes
        draw from one generator in turn, so the batch size is part of a run's identity
        like the seed.
    """

    name = "random"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, batch: int = 32) -> None:
        super().__init__(env, seed, budget=budget)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        self.batch_size = batch
        self.rng = np.random.default_rng(self.seed)
        self._nc = self.spaces.n_continuous

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> Action:
        mask = info["action_mask"]
        u = self.rng.random(len(mask))
        disc = np.empty(len(mask), np.int64)
        for j, m in enumerate(mask):
            legal = np.flatnonzero(m)
            disc[j] = legal[min(int(u[j] * len(legal)), len(legal) - 1)]
        cont = self.rng.uniform(-1.0, 1.0, self._nc).astype(np.float32)
        return {"discrete": disc, "continuous": cont}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

    def hyperparameters(self) -> dict[str, Any]:
        return {"batch": self.batch_size}
