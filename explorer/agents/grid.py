"""Grid search (the paper's second baseline) over the main parameters of a uniform mesh.

A full grid over every gene is astronomically large, so the grid spans the parameters a
designer sweeps first — mesh rows and columns, VLEN, DMEM, where weights live, the
off-chip memory kind and channels, pipeline groups — for a homogeneous mesh (one tile
class) with every other gene fixed at :class:`explorer.design.TileConfig`'s defaults and
the lowest supply that meets the clock. Levels (evenly spaced over each gene's legal
options) are added round-robin in that order until the grid holds at least ``budget``
points, and the points are visited in a seeded random permutation, so a budget smaller
than the grid samples it evenly instead of sweeping one corner (as Optuna's GridSampler
does; it is not used because its per-trial bookkeeping is quadratic in the trials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..design import TileConfig
from ..space import DISCRETE
from .genome import GENES, Gene, GenomeAgent

__all__ = ["GridAgent", "GRID_GENES", "grid_levels"]

#: Swept genes, most important first.
GRID_GENES = ("mesh.rows", "mesh.cols", "class0.core.vlen", "class0.memory.dmem_kib",
              "mesh.weights", "offchip.offchip", "placement.channels", "placement.groups")
_MAX_LEVELS = 8


def _default_values() -> dict[str, float]:
    """Genes of the non-swept parameters: TileConfig defaults, one class, lowest Vdd."""
    t = TileConfig()
    out: dict[str, float] = {}
    for g in GENES:
        if g.discrete:
            opts = DISCRETE[g.dim]
            value = getattr(t, g.dim, None)
            idx = 0 if g.dim == "classes" else opts.index(value) if value in opts else (len(opts) - 1) // 2
            out[g.name] = (idx + 0.5) / len(opts)
        else:
            # Lowest supply meeting the clock (least energy at a fixed clock); even shares/mix.
            out[g.name] = -1.0 if g.dim == "vdd" else 0.0
    return out


def grid_levels(budget: int) -> dict[str, int]:
    """Levels per swept gene: round-robin increments until the product reaches ``budget``."""
    caps = {n: min(next(g for g in GENES if g.name == n).options, _MAX_LEVELS) for n in GRID_GENES}
    levels = dict.fromkeys(GRID_GENES, 1)
    product = 1
    while product < budget and any(levels[n] < caps[n] for n in GRID_GENES):
        for n in GRID_GENES:
            if product < budget and levels[n] < caps[n]:
                product = product // levels[n] * (levels[n] + 1)
                levels[n] += 1
    return levels


class GridAgent(GenomeAgent):
    """Seeded random traversal of a grid over :data:`GRID_GENES` (see the module docstring).

    Parameters
    ----------
    batch : int
        Episodes run in lockstep (grid points do not depend on results).
    """

    name = "grid"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, batch: int = 32) -> None:
        super().__init__(env, seed, budget=budget)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        self.batch_size = batch
        self.levels = grid_levels(budget or 2000)
        self._fixed = _default_values()
        self._radix = np.array([self.levels[n] for n in GRID_GENES])
        self._order = np.random.default_rng(self.seed).permutation(int(np.prod(self._radix)))

    def point(self, episode: int) -> dict[str, float]:
        """Gene values of the grid point visited at ``episode`` (the grid repeats if exhausted)."""
        flat = int(self._order[episode % len(self._order)])
        out = dict(self._fixed)
        for name, k in zip(GRID_GENES, self._radix, strict=True):
            flat, i = divmod(flat, int(k))
            out[name] = (i + 0.5) / k
        return out

    def gene_values(self, episode: int, genes: tuple[Gene, ...]) -> Mapping[str, float]:
        p = self.point(episode)
        return {g.name: p[g.name] for g in genes}

    def state_dict(self) -> dict[str, Any]:
        return {"levels": dict(self.levels)}     # points are a pure function of seed and episode

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if dict(state["levels"]) != self.levels:
            raise ValueError("grid checkpoint was made for another budget")

    def hyperparameters(self) -> dict[str, Any]:
        return {"batch": self.batch_size}
