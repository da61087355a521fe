"""Pareto archive over (perf, power, area) and the paper's final pick (§6.4).

Objectives are the reward's normalised terms (``explorer.reward.objectives``): perf is
maximised, power and area minimised. Only *admissible* designs enter the archive
(physically feasible, within the mode's power budget, meeting its latency target). The
final design is the front point with the best weighted score of the mode's weights
applied to *frontier-normalised* objectives (each min-max scaled over the front); ties go
to the earliest episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ParetoPoint", "ParetoArchive", "dominates", "pareto_front", "select"]


@dataclass(frozen=True)
class ParetoPoint:
    """One archived design: its episode and (perf, power, area)."""

    episode: int
    perf: float
    power: float
    area: float

    def as_min(self) -> tuple[float, float, float]:
        """The objectives as a minimisation vector."""
        return (-self.perf, self.power, self.area)


def dominates(a: ParetoPoint, b: ParetoPoint) -> bool:
    """``a`` is no worse than ``b`` in every objective and better in one."""
    x, y = a.as_min(), b.as_min()
    return all(p <= q for p, q in zip(x, y, strict=True)) and any(p < q for p, q in zip(x, y, strict=True))


def pareto_front(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    """The non-dominated points (duplicates of an objective vector: the earliest only)."""
    archive = ParetoArchive()
    for p in sorted(points, key=lambda p: p.episode):
        archive.add(p)
    return archive.front


class ParetoArchive:
    """Incremental set of non-dominated points."""

    def __init__(self) -> None:
        self._front: list[ParetoPoint] = []

    @property
    def front(self) -> list[ParetoPoint]:
        return sorted(self._front, key=lambda p: p.episode)

    def add(self, point: ParetoPoint) -> bool:
        """Insert ``point`` unless dominated or equal to an archived one; True if kept."""
        for q in self._front:
            if dominates(q, point) or q.as_min() == point.as_min():
                return False
        self._front = [q for q in self._front if not dominates(point, q)]
        self._front.append(point)
        return True

    def __len__(self) -> int:
        return len(self._front)


def select(front: Sequence[ParetoPoint], weights: tuple[float, float, float]) -> ParetoPoint:
    """The paper's pick: max of w_perf*perf' - w_power*power' - w_area*area' (front-normalised)."""
    if not front:
        raise ValueError("the Pareto front is empty")
    pts = sorted(front, key=lambda p: p.episode)
    x = np.array([[p.perf, p.power, p.area] for p in pts], float)
    lo, hi = x.min(0), x.max(0)
    z = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    score = weights[0] * z[:, 0] - weights[1] * z[:, 1] - weights[2] * z[:, 2]
    return pts[int(np.argmax(score))]     # argmax takes the first maximum: earliest episode
