"""Grid search (the paper's second baseline) over the main parameters of a uniform mesh.

A full grid over every gene is astronomically large, so the grid spans the parameters a
designer sweeps first — mesh rows and columns, VLEN, DMEM, where weights live, the
off-chip memory kind and channels, pipeline groups — for a homogeneous mesh (one tile
class) with every other gene fixed at :class:`explorer.design.TileConfig`'s defaults.
Levels are added round-robin in that order until the grid holds at least ``budget``
points; :class:`optuna.samplers.GridSampler` then visits them in a seeded random order,
so a budget smaller than the grid samples it evenly instead of sweeping one corner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from ..design import TileConfig
from ..space import DISCRETE
from .genome import GENES, Gene
from .optuna_agents import OptunaAgent

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
            idx = opts.index(value) if value in opts else (len(opts) - 1) // 2
            if g.dim == "classes":
                idx = 0
            out[g.name] = (idx + 0.5) / len(opts)
        else:
            # Lowest supply meeting the clock (least energy at a fixed clock); even shares/mix.
            out[g.name] = -1.0 if g.dim == "vdd" else 0.0
    return out


def grid_levels(budget: int) -> dict[str, int]:
    """Levels per swept gene: round-robin increments until the product reaches ``budget``."""
    caps = {}
    for name in GRID_GENES:
        gene = next(g for g in GENES if g.name == name)
        caps[name] = min(gene.options, _MAX_LEVELS)
    levels = dict.fromkeys(GRID_GENES, 1)
    product = 1
    while product < budget and any(levels[n] < caps[n] for n in GRID_GENES):
        for n in GRID_GENES:
            if product >= budget:
                break
            if levels[n] < caps[n]:
                product = product // levels[n] * (levels[n] + 1)
                levels[n] += 1
    return levels


class GridAgent(OptunaAgent):
    """Seeded random traversal of a grid over :data:`GRID_GENES` (see the module docstring).

    Parameters
    ----------
    batch : int
        Episodes run in lockstep (grid points do not depend on results).
    """

    name = "grid"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, batch: int = 32) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive integer, not {batch!r}")
        self.batch_size = batch
        self.levels = grid_levels(budget or 2000)
        self._fixed = _default_values()
        super().__init__(env, seed, budget=budget)

    def _make_study(self) -> optuna.Study:
        space = {n: [(i + 0.5) / k for i in range(k)] for n, k in self.levels.items()}
        return optuna.create_study(direction="maximize",
                                   sampler=optuna.samplers.GridSampler(space, seed=self.seed))

    def gene_values(self, episode: int, genes: tuple[Gene, ...]) -> Mapping[str, float]:
        swept = tuple(g for g in genes if g.name in self.levels)
        out = {g.name: self._fixed[g.name] for g in genes}
        out.update(super().gene_values(episode, swept))
        return out

    def hyperparameters(self) -> dict[str, Any]:
        return {"batch": self.batch_size, "levels": self.levels}
