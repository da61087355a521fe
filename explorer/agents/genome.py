"""Black-box agents' view of an episode: a fixed-length vector of genes.

Every construction step reads some action dims (``EnvSpaces.stage_names`` x the stage's
dims of :data:`explorer.space.STAGES`). A *gene* is one of them at one step, named
``"<stage>.<dim>"``: discrete genes are u in [0, 1] and pick the ``floor(u * n)``-th of
the n options the step's mask allows (so every gene value is legal, and the genome has
the same genes in every episode, which GA crossover and TPE need); continuous genes are
the action value in [-1, 1]. Genes of unused tile classes are still drawn and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..space import CONTINUOUS, DISCRETE, STAGES
from .base import Action, Agent

__all__ = ["Gene", "GENES", "GenomeAgent", "genes_of_stage", "action_from_genes"]

_DI = {n: i for i, n in enumerate(DISCRETE)}
_CI = {n: i for i, n in enumerate(CONTINUOUS)}


@dataclass(frozen=True)
class Gene:
    """One decision: ``dim`` of stage ``step``; ``discrete`` genes live in [0, 1]."""

    name: str
    step: int
    dim: str
    discrete: bool

    @property
    def low(self) -> float:
        return 0.0 if self.discrete else -1.0

    @property
    def options(self) -> int:
        """Options of the dim (continuous genes: 0)."""
        return len(DISCRETE[self.dim]) if self.discrete else 0


def genes_of_stage(step: int) -> tuple[Gene, ...]:
    st = STAGES[step]
    return (tuple(Gene(f"{st.name}.{d}", step, d, True) for d in st.discrete)
            + tuple(Gene(f"{st.name}.{c}", step, c, False) for c in st.continuous))


#: Every gene in episode order.
GENES: tuple[Gene, ...] = tuple(g for s in range(len(STAGES)) for g in genes_of_stage(s))


def action_from_genes(values: Mapping[str, float], step: int,
                      mask: tuple[np.ndarray, ...]) -> Action:
    """The action of ``step`` from gene values (missing genes: option 0 / 0.0)."""
    disc = np.zeros(len(DISCRETE), np.int64)
    cont = np.zeros(len(CONTINUOUS), np.float32)
    for g in genes_of_stage(step):
        if g.name not in values:
            continue
        v = float(values[g.name])
        if g.discrete:
            legal = np.flatnonzero(mask[_DI[g.dim]])
            disc[_DI[g.dim]] = legal[min(int(v * len(legal)), len(legal) - 1)]
        else:
            cont[_CI[g.dim]] = np.float32(min(max(v, -1.0), 1.0))
    return {"discrete": disc, "continuous": cont}


class GenomeAgent(Agent):
    """Base of the black-box agents: asks :meth:`gene_values` per step, tells per episode.

    Subclasses implement ``gene_values(episode, genes)`` (values of the given genes for
    ``episode``; called once per step, in episode order) and ``tell(episode, total, info)``.
    """

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> Action:
        step = int(info["step"])
        values = self.gene_values(int(info["episode"]), genes_of_stage(step))
        return action_from_genes(values, step, info["action_mask"])

    def end_episode(self, total_reward: float, info: Mapping[str, Any]) -> None:
        self.tell(int(info["episode"]), float(total_reward), info)

    def gene_values(self, episode: int, genes: tuple[Gene, ...]) -> Mapping[str, float]:
        raise NotImplementedError

    def tell(self, episode: int, total_reward: float, info: Mapping[str, Any]) -> None:
        """Result of ``episode`` (default: ignored)."""
