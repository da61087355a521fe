"""A batch of designs as numpy arrays: the PPA model's input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from ..design import OFFCHIP_KINDS, Design
from ..placement import default_placement, group_hops
from .tables import WorkloadTables

__all__ = ["DesignBatch", "from_designs"]


@dataclass(frozen=True)
class DesignBatch:
    """D designs: per-design ``[D]``, per-class ``[D, K]`` and per-group ``[D, G]`` arrays.

    Unused class/group slots have ``k_count == 0`` / ``g_tiles == 0``. Groups are pipeline
    stages over the workload's op order: group g of design d runs the ops at name positions
    ``stage_end[d, g-1] <= i < stage_end[d, g]`` (``tables.op_names``).
    """

    clock_mhz: np.ndarray
    vdd_v: np.ndarray              # NaN = the node's nominal Vdd
    rows: np.ndarray
    cols: np.ndarray
    flit_bits: np.ndarray
    weights_offchip: np.ndarray    # bool
    offchip_kind: np.ndarray       # index into OFFCHIP_KINDS, -1 for none
    channels: np.ndarray
    k_count: np.ndarray
    k_vlen: np.ndarray
    k_fetch: np.ndarray
    k_stations: np.ndarray
    k_xdp: np.ndarray
    k_vdp: np.ndarray
    k_xr_wp: np.ndarray
    k_vr_wp: np.ndarray
    k_dmem_kib: np.ndarray
    k_imem_kib: np.ndarray
    k_wmem_kib: np.ndarray
    k_wmem_rom: np.ndarray         # bool
    g_class: np.ndarray
    g_tiles: np.ndarray
    g_hops: np.ndarray             # mean hop distance inside the group
    g_row: np.ndarray              # group centroid (for inter-group distances)
    g_col: np.ndarray
    stage_end: np.ndarray          # [D, G], non-decreasing along G

    def __len__(self) -> int:
        return len(self.clock_mhz)

    @property
    def n_tiles(self) -> np.ndarray:
        return self.rows * self.cols

    def take(self, idx: np.ndarray | Sequence[int]) -> DesignBatch:
        """The sub-batch of designs ``idx``."""
        idx = np.asarray(idx)
        return DesignBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(batches: Sequence[DesignBatch]) -> DesignBatch:
        """Stack batches (class/group dimensions padded to the widest)."""
        out = {}
        for f in fields(DesignBatch):
            arrs = [getattr(b, f.name) for b in batches]
            if arrs[0].ndim == 2:
                width = max(a.shape[1] for a in arrs)
                mode = "edge" if f.name == "stage_end" else "constant"
                arrs = [np.pad(a, ((0, 0), (0, width - a.shape[1])), mode=mode) for a in arrs]
            out[f.name] = np.concatenate(arrs)
        return DesignBatch(**out)


def from_designs(designs: Sequence[Design], tables: WorkloadTables) -> DesignBatch:
    """Arrays for ``designs``; a design without placement gets :func:`default_placement`.

    A design whose placement names another workload, misses an op, or is not a pipeline
    (ops in workload order must map to non-decreasing groups) is rejected with a
    ValueError that names the problem.
    """
    name_index = tables.name_index
    k_max = max(len(d.mesh.tile_classes) for d in designs)
    rows_k = {f: np.zeros((len(designs), k_max), np.int64) for f in
              ("count", "vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp",
               "dmem_kib", "imem_kib", "wmem_kib", "wmem_rom")}
    placements = []
    for d in designs:
        p = d.placement or default_placement(tables, d.mesh,
                                             weights_on_die=d.memory.weights == "on_die")
        if p.workload != tables.workload:
            raise ValueError(f"design {d.name!r} is placed for workload {p.workload!r}, "
                             f"not {tables.workload!r}")
        placements.append(p)
    g_max = max(len(p.groups) for p in placements)
    g = {f: np.zeros((len(designs), g_max), float) for f in ("class", "tiles", "hops", "row", "col")}
    stage_end = np.zeros((len(designs), g_max), np.int64)
    for i, (d, p) in enumerate(zip(designs, placements, strict=True)):
        counts = d.mesh.class_counts()
        for k, t in enumerate(d.mesh.tile_classes):
            rows_k["count"][i, k] = counts[k]
            for f in ("vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp",
                      "dmem_kib", "imem_kib", "wmem_kib"):
                rows_k[f][i, k] = getattr(t, f)
            rows_k["wmem_rom"][i, k] = t.wmem_kind == "rom"
        for j, grp in enumerate(p.groups):
            r0, c0 = grp.tiles[0]
            g["class"][i, j] = d.mesh.class_grid[r0][c0]
            g["tiles"][i, j] = len(grp)
            g["hops"][i, j] = group_hops(grp.tiles)
            g["row"][i, j] = np.mean([t[0] for t in grp.tiles])
            g["col"][i, j] = np.mean([t[1] for t in grp.tiles])
        missing = [n for n in tables.op_names if n not in p.op_group]
        if missing:
            raise ValueError(f"design {d.name!r} places no group for op {missing[0]!r}")
        unknown = [n for n in p.op_group if n not in name_index]
        if unknown:
            raise ValueError(f"design {d.name!r} places unknown op {unknown[0]!r}")
        seq = np.array([p.op_group[n] for n in tables.op_names], np.int64)
        back = np.flatnonzero(np.diff(seq) < 0)
        if back.size:
            j = int(back[0])
            raise ValueError(f"design {d.name!r}: placement is not a pipeline: op "
                             f"{tables.op_names[j + 1]!r} (group {seq[j + 1]}) follows "
                             f"{tables.op_names[j]!r} (group {seq[j]})")
        stage_end[i] = np.searchsorted(seq, np.arange(g_max), side="right")
    return DesignBatch(
        clock_mhz=np.array([d.clock_mhz for d in designs], float),
        vdd_v=np.array([np.nan if d.vdd_v is None else d.vdd_v for d in designs], float),
        rows=np.array([d.mesh.rows for d in designs], np.int64),
        cols=np.array([d.mesh.cols for d in designs], np.int64),
        flit_bits=np.array([d.mesh.flit_bits for d in designs], np.int64),
        weights_offchip=np.array([d.memory.weights == "off_chip" for d in designs]),
        offchip_kind=np.array([-1 if d.memory.offchip is None else OFFCHIP_KINDS.index(d.memory.offchip)
                               for d in designs], np.int64),
        channels=np.array([d.memory.channels for d in designs], np.int64),
        **{f"k_{f}": (a.astype(bool) if f == "wmem_rom" else a) for f, a in rows_k.items()},
        g_class=g["class"].astype(np.int64), g_tiles=g["tiles"].astype(np.int64),
        g_hops=g["hops"], g_row=g["row"], g_col=g["col"], stage_end=stage_end,
    )
