"""Random designs over the paper's parameter ranges (benchmarks, property tests, baselines)."""

from __future__ import annotations

import numpy as np

from ..design import OFFCHIP_KINDS, Design, MemoryConfig, MeshConfig, TileConfig

__all__ = ["random_tile", "random_design"]


def random_tile(rng: np.random.Generator, *, wmem_kib: int | None = None) -> TileConfig:
    """A tile with every parameter drawn uniformly from its (quantised) range."""
    return TileConfig(
        fetch=int(rng.integers(1, 17)), vlen=int(2 ** rng.integers(7, 12)),
        stations=int(rng.integers(1, 33)), xdp=int(rng.integers(1, 5)),
        vdp=int(rng.integers(1, 5)), xr_wp=int(rng.integers(1, 5)), vr_wp=int(rng.integers(1, 5)),
        dmem_kib=int(2 ** rng.integers(4, 10)), imem_kib=int(2 ** rng.integers(0, 8)),
        wmem_kib=int(16 * rng.integers(0, 4097)) if wmem_kib is None else wmem_kib,
        wmem_kind=str(rng.choice(["rom", "sram"])))


def random_design(rng: np.random.Generator, node: str, fmax_mhz: float, *,
                  max_side: int = 48, max_classes: int = 4) -> Design:
    """A heterogeneous mesh: 1-``max_classes`` tile classes in horizontal bands."""
    rows, cols = (int(x) for x in rng.integers(1, max_side + 1, size=2))
    n_classes = int(min(rng.integers(1, max_classes + 1), rows))
    classes = tuple(random_tile(rng) for _ in range(n_classes))
    cuts = np.sort(rng.choice(np.arange(1, rows), size=n_classes - 1, replace=False)) if n_classes > 1 else []
    band = np.searchsorted(np.asarray(cuts), np.arange(rows), side="right")
    grid = tuple(tuple(int(band[r]) for _ in range(cols)) for r in range(rows))
    mesh = MeshConfig(rows, cols, classes, grid, flit_bits=int(2 ** rng.integers(6, 14)))
    if rng.random() < 0.5:
        memory = MemoryConfig("on_die")
    else:
        kind = str(rng.choice(OFFCHIP_KINDS))
        memory = MemoryConfig(str(rng.choice(["on_die", "off_chip"])), kind, int(rng.integers(1, 9)))
    clock = float(rng.uniform(0.05, 1.0) * fmax_mhz)
    return Design(name=f"rand{int(rng.integers(1 << 30))}", node=node, mesh=mesh, memory=memory,
                  clock_mhz=max(clock, 1.0))
