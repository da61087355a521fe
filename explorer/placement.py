"""Operator placement: tile groups and the default balanced-pipeline placer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .design import MeshConfig, Placement, TileGroup

if TYPE_CHECKING:
    from .ppa.tables import WorkloadTables

__all__ = ["snake_order", "default_groups", "balanced_assignment", "default_placement",
           "group_hops"]


def snake_order(rows: int, cols: int) -> list[tuple[int, int]]:
    """Tiles in boustrophedon order: consecutive tiles are mesh neighbours."""
    return [(r, c if r % 2 == 0 else cols - 1 - c) for r in range(rows) for c in range(cols)]


def default_groups(mesh: MeshConfig, n_groups: int) -> tuple[TileGroup, ...]:
    """Split the mesh into ``n_groups`` compact single-class groups along the snake order.

    Runs of equal tile class along the snake are split into groups in proportion to their
    length (every run gets at least one group), so a heterogeneous mesh never yields a
    mixed-class group. Returns at least one group per class run, so the result may hold
    more than ``n_groups`` groups when the mesh has more class runs than that.
    """
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, not {n_groups}")
    order = snake_order(mesh.rows, mesh.cols)
    runs: list[list[tuple[int, int]]] = []
    for rc in order:
        if runs and mesh.class_grid[rc[0]][rc[1]] == mesh.class_grid[runs[-1][0][0]][runs[-1][0][1]]:
            runs[-1].append(rc)
        else:
            runs.append([rc])
    n_groups = min(n_groups, mesh.n_tiles)
    lengths = np.array([len(r) for r in runs], float)
    share = np.maximum(1, np.floor(lengths / lengths.sum() * n_groups + 1e-9)).astype(int)
    share = np.minimum(share, lengths.astype(int))
    while share.sum() < n_groups and (share < lengths).any():
        gap = np.where(share < lengths, lengths / share, 0)
        share[int(np.argmax(gap))] += 1
    groups: list[TileGroup] = []
    for run, k in zip(runs, share):
        for part in np.array_split(np.arange(len(run)), k):
            groups.append(TileGroup(tuple(run[i] for i in part)))
    return tuple(groups)


def balanced_assignment(cost: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Assign items (in order) to bins (in order) so cumulative cost tracks capacity.

    Item i goes to the bin whose share of cumulative capacity contains the midpoint of
    item i's share of cumulative cost; every bin with capacity gets items contiguously.
    Returns the bin index per item.
    """
    cost = np.asarray(cost, float)
    capacity = np.asarray(capacity, float)
    if cost.sum() <= 0:
        cost = np.ones_like(cost)
    mid = (np.cumsum(cost) - cost / 2) / cost.sum()
    edges = np.cumsum(capacity) / capacity.sum()
    return np.minimum(np.searchsorted(edges, mid, side="right"), len(capacity) - 1)


def default_placement(tables: WorkloadTables, mesh: MeshConfig, n_groups: int | None = None,
                      *, weights_on_die: bool = True) -> Placement:
    """Balanced pipeline: ops in topological order cut into contiguous stages whose cost
    share matches each group's share of compute (tiles x lanes) and weight capacity.

    The cost of an op mixes its FLOPs share and (with weights on die) its weight-bytes
    share half and half, so stages balance both the work and the WMEM they need. By
    default (``n_groups`` None) there is one group per run of equal tile classes: every op
    is split over as many tiles as possible, which serves batch-1 decode best; more groups
    trade per-op parallelism for pipelining (prefill throughput) and less all-gather.
    """
    if n_groups is None:
        n_groups = 1
    groups = default_groups(mesh, max(1, min(n_groups, mesh.n_tiles)))
    lanes = np.array([mesh.tile_at(*g.tiles[0]).lanes_fp16 * len(g) for g in groups], float)
    wmem = np.array([mesh.tile_at(*g.tiles[0]).wmem_kib * len(g) for g in groups], float)
    flops = tables.op_cost / max(tables.op_cost.sum(), 1.0)
    cost = flops
    capacity = lanes / lanes.sum()
    if weights_on_die and tables.op_weight_bytes.sum() > 0 and wmem.sum() > 0:
        cost = 0.5 * flops + 0.5 * tables.op_weight_bytes / tables.op_weight_bytes.sum()
        capacity = 0.5 * capacity + 0.5 * wmem / wmem.sum()
    assign = balanced_assignment(cost, capacity)
    return Placement(workload=tables.workload, groups=groups,
                     op_group={n: int(g) for n, g in zip(tables.op_names, assign)})


def group_hops(tiles: Sequence[tuple[int, int]]) -> float:
    """Mean Manhattan distance between two tiles of a group (0 for one tile)."""
    n = len(tiles)
    if n < 2:
        return 0.0
    total = 0.0
    for axis in (0, 1):
        x = np.sort(np.array([t[axis] for t in tiles], float))
        # sum over pairs |xi - xj| = sum_i x_i * (2i - n + 1) for sorted x
        total += float((x * (2 * np.arange(n) - n + 1)).sum())
    return total / (n * (n - 1) / 2)
