"""Elite-anchored episodes: first return to an elite design, then let the policy explore.

Go-Explore (Ecoffet, Huizinga, Lehman, Stanley & Clune, 2021, "First return, then
explore", Nature 590:580-586) separates *returning* to a promising state from *exploring*
from it; in a deterministic environment the return is a replay of the stored actions.
Here an episode builds one design, so "returning" is replaying an elite episode's actions
and "exploring" is letting the SAC-MoE policy choose a few of its genes (a discrete
dimension or a continuous dimension of one construction step) — the small gene-level
moves around the elite by which the GA and SA refine their best designs
(``docs/sac_moe.md`` §5).

An :class:`AnchorPlan` says which elite is replayed and which of its genes the policy
draws. :func:`anchored_step` turns the policy's proposal at one step into the action:

* a *mutated* gene: the policy's sample, drawn with the elite's own value masked out (so
  the design changes) and, for ordinal dimensions, optionally only within ``window``
  ranks of it (a trust region);
* any other gene the elite chose (its recorded mask allowed more than one value): the
  elite's value, projected onto the nearest legal value if an earlier change made it
  illegal (the environment would do the same);
* a gene the elite never chose (e.g. a tile class that a mutated class count has just
  switched on): the policy's sample, since the elite has no value for it.

The environment is deterministic, so an anchored episode with no mutated gene rebuilds
the elite exactly (tested). Every anchored transition goes to the replay buffer like any
other: SAC is off-policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AnchorPlan", "free_genes", "plan_anchor", "restrict_mask", "anchored_step"]


@dataclass(frozen=True)
class AnchorPlan:
    """The elite episode to replay and the genes the policy redraws.

    ``mutated`` holds (step, kind, dim) triples, kind ``"d"`` (discrete) or ``"c"``
    (continuous); the arrays are the elite's stacked episode (``buffer._stack``).
    """

    action_discrete: np.ndarray
    """(T, D) int64: the elite's discrete actions."""
    action_continuous: np.ndarray
    """(T, C) float32: the elite's continuous actions."""
    mask: np.ndarray
    """(T, F) bool: the flat masks the elite's actions obeyed."""
    continuous_mask: np.ndarray
    """(T, C) bool: the continuous dims each step read."""
    mutated: frozenset[tuple[int, str, int]]
    """Genes the policy draws instead of replaying."""
    elite_rank: int
    """Rank of the replayed elite in the elite buffer (0 = best)."""

    def state(self) -> dict[str, Any]:
        return {"action_discrete": self.action_discrete.copy(),
                "action_continuous": self.action_continuous.copy(),
                "mask": self.mask.copy(), "continuous_mask": self.continuous_mask.copy(),
                "mutated": sorted(self.mutated), "elite_rank": self.elite_rank}

    @staticmethod
    def from_state(state: dict[str, Any]) -> AnchorPlan:
        return AnchorPlan(np.asarray(state["action_discrete"]),
                          np.asarray(state["action_continuous"]), np.asarray(state["mask"]),
                          np.asarray(state["continuous_mask"]),
                          frozenset(tuple(g) for g in state["mutated"]),
                          int(state["elite_rank"]))


def _segments(nvec: tuple[int, ...]) -> list[slice]:
    offsets = np.concatenate([[0], np.cumsum(nvec)]).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def free_genes(mask: np.ndarray, continuous_mask: np.ndarray,
               nvec: tuple[int, ...]) -> list[tuple[int, str, int]]:
    """Genes an episode actually chose: discrete dims with more than one legal value and
    continuous dims the step read, as (step, kind, dim), in episode order."""
    segs = _segments(nvec)
    out = []
    for t in range(mask.shape[0]):
        out.extend((t, "d", j) for j, s in enumerate(segs) if mask[t, s].sum() > 1)
        out.extend((t, "c", j) for j in np.flatnonzero(continuous_mask[t]))
    return [(int(t), k, int(j)) for t, k, j in out]


def plan_anchor(elite: dict[str, np.ndarray], rank: int, nvec: tuple[int, ...],
                max_genes: int, rng: np.random.Generator) -> AnchorPlan:
    """A plan replaying ``elite`` with 1..``max_genes`` (uniform) of its genes redrawn."""
    genes = free_genes(elite["mask"], elite["continuous_mask"], nvec)
    n = min(int(rng.integers(1, max_genes + 1)), len(genes))
    picked = rng.choice(len(genes), size=n, replace=False) if n else []
    return AnchorPlan(np.asarray(elite["action_discrete"]),
                      np.asarray(elite["action_continuous"]), np.asarray(elite["mask"]),
                      np.asarray(elite["continuous_mask"]),
                      frozenset(genes[i] for i in picked), int(rank))


def _ranks_within(legal: np.ndarray, centre: int, window: int) -> np.ndarray:
    """Legal values within ``window`` ranks (among the legal values) of ``centre``."""
    idx = np.flatnonzero(legal)
    pos = int(np.searchsorted(idx, centre))
    keep = np.zeros_like(legal)
    keep[idx[max(0, pos - window):pos + window + 1]] = True
    return keep & legal


def restrict_mask(plan: AnchorPlan, step: int, mask: np.ndarray, nvec: tuple[int, ...],
                  window: int, ordinal_min_options: int) -> np.ndarray:
    """The mask the policy samples under at ``step``: for each mutated discrete gene the
    elite's value is removed (if another legal value remains) and, if ``window`` > 0 and
    the dimension has at least ``ordinal_min_options`` values, only values within
    ``window`` ranks of it are kept."""
    out = mask.copy()
    if step >= len(plan.action_discrete):
        return out
    for j, seg in enumerate(_segments(nvec)):
        if (step, "d", j) not in plan.mutated:
            continue
        legal = out[seg].copy()
        centre = int(plan.action_discrete[step, j])
        if window > 0 and nvec[j] >= ordinal_min_options:
            near = _ranks_within(legal, centre, window)
            legal = near if near.any() else legal
        moved = legal.copy()
        if 0 <= centre < len(moved):
            moved[centre] = False
        out[seg] = moved if moved.any() else legal
    return out


def _project(value: int, legal: np.ndarray) -> int:
    """``value`` if legal, else the nearest legal value (ties: the lower one)."""
    value = min(max(int(value), 0), len(legal) - 1)
    if legal[value]:
        return value
    idx = np.flatnonzero(legal)
    return int(idx[np.argmin(np.abs(idx - value))])


def anchored_step(plan: AnchorPlan, step: int, mask: np.ndarray, continuous_mask: np.ndarray,
                  policy_discrete: np.ndarray, policy_continuous: np.ndarray,
                  nvec: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The action of ``step``: the elite's values, the policy's where it explores.

    ``policy_*`` is the policy's sample under :func:`restrict_mask`; ``mask`` and
    ``continuous_mask`` are the environment's at this step.
    """
    if step >= len(plan.action_discrete):
        return policy_discrete, policy_continuous
    action_d = np.array(policy_discrete, dtype=np.int64, copy=True)
    action_c = np.array(policy_continuous, dtype=np.float32, copy=True)
    for j, seg in enumerate(_segments(nvec)):
        legal = mask[seg]
        if legal.sum() <= 1 or (step, "d", j) in plan.mutated:
            continue
        if plan.mask[step, seg].sum() > 1:      # the elite chose this gene: replay it
            action_d[j] = _project(int(plan.action_discrete[step, j]), legal)
    for j in np.flatnonzero(continuous_mask):
        if (step, "c", int(j)) not in plan.mutated and plan.continuous_mask[step, j]:
            action_c[j] = plan.action_continuous[step, j]
    return action_d, action_c
