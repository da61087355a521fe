"""The explorer's design space: action dims, construction stages, masks and decoding.

One episode builds one design in :data:`STAGES` order (mesh -> layout -> tile classes ->
off-chip memory and supply -> placement). Every step takes the same mixed action
``{"discrete": int[len(DISCRETE)], "continuous": float[len(CONTINUOUS)] in [-1, 1]}``;
each stage reads some dims and ignores the others. :func:`masks` gives, per discrete dim,
the legal options at a step (an ignored dim allows only option 0), so illegal
combinations cannot be built; :func:`apply` projects a masked choice onto the nearest
legal option. The ranges are the source paper's Tab. 7 (``seed_paper.md`` §4.1),
quantised to the values the design schema (``explorer/design.py``) accepts.

Choices that are derived rather than searched (documented in ``docs/explorer.md``):

* WMEM size: exactly the per-tile weight share of the class's most loaded pipeline group,
  rounded up to 16 KiB (0 with weights off chip). Any other size is either too small
  (infeasible) or pure area cost under the model — the paper's "adaptive" WMEM.
* Clock: the node's fmax in performance mode, 10 MHz in low-power mode; the supply is
  searched between the lowest Vdd that still meets that clock and the node's Vdd max.
* Placement: pipeline groups in class order (all groups of class 0, then class 1, ...),
  each class's tiles split along the snake order; ops in workload order are cut into
  stages whose cost share (``mix`` x FLOPs + (1 - ``mix``) x weight bytes) tracks each
  group's capacity share (``mix`` x lanes + (1 - ``mix``) x tiles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import contract as C
from .design import (
    OFFCHIP_KINDS,
    Design,
    MemoryConfig,
    MeshConfig,
    Placement,
    TileConfig,
    TileGroup,
)
from .placement import balanced_assignment, group_hops
from .ppa.batch import DesignBatch
from .tech.node import TechNode

__all__ = [
    "MAX_CLASSES", "LAYOUTS", "DISCRETE", "CONTINUOUS", "Stage", "STAGES", "Choices",
    "SpaceContext", "masks", "continuous_mask", "apply", "decode", "to_batch", "encode", "DESIGN_FEATURES",
    "class_grid", "imem_min_kib", "vdd_range", "LOW_POWER_CLOCK_MHZ",
]

#: Tile classes a design may have (heterogeneous mesh).
MAX_CLASSES = 4
#: Clock of the low-power mode (the source paper's SmolVLM setting, Tab. 19).
LOW_POWER_CLOCK_MHZ = 10.0

#: Class layouts: each orders the tiles, and classes fill the order in proportion.
LAYOUTS = ("row_bands", "col_bands", "quadrants", "checkerboard", "ring")

_POW2 = lambda lo, hi: tuple(2 ** i for i in range(lo, hi + 1))  # noqa: E731

#: Discrete dims: name -> option values (index = action value).
DISCRETE: Mapping[str, tuple[Any, ...]] = {
    "rows": tuple(range(1, 65)),
    "cols": tuple(range(1, 65)),
    "flit_bits": _POW2(6, 13),
    "weights": ("on_die", "off_chip"),
    "classes": (1, 2, 3, 4),
    "layout": LAYOUTS,
    "fetch": tuple(range(1, 17)),
    "vlen": _POW2(7, 11),
    "stations": tuple(range(1, 33)),
    "xdp": tuple(range(1, 17)),
    "vdp": tuple(range(1, 17)),
    "xr_wp": tuple(range(1, 17)),
    "vr_wp": tuple(range(1, 17)),
    "dmem_kib": _POW2(4, 9),
    "imem_kib": _POW2(0, 7),
    "wmem_kind": ("rom", "sram"),
    "offchip": (None, *OFFCHIP_KINDS),
    "channels": (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
    "groups": (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
}
#: Continuous dims, each in [-1, 1]: class shares (softmax of 2 x value), supply and mix.
CONTINUOUS: tuple[str, ...] = ("share0", "share1", "share2", "share3", "vdd", "mix")

_DNAMES = tuple(DISCRETE)
_DI = {n: i for i, n in enumerate(_DNAMES)}
_CI = {n: i for i, n in enumerate(CONTINUOUS)}
_CLASS_CORE = ("fetch", "vlen", "stations", "xdp", "vdp", "xr_wp", "vr_wp")
_CLASS_MEM = ("dmem_kib", "imem_kib", "wmem_kind")


@dataclass(frozen=True)
class Stage:
    """One construction step: which discrete and continuous dims it reads."""

    name: str
    discrete: tuple[str, ...]
    continuous: tuple[str, ...] = ()
    tile_class: int | None = None


STAGES: tuple[Stage, ...] = (
    Stage("mesh", ("rows", "cols", "flit_bits", "weights")),
    Stage("layout", ("classes", "layout"), ("share0", "share1", "share2", "share3")),
    *(s for k in range(MAX_CLASSES) for s in (
        Stage(f"class{k}.core", _CLASS_CORE, (), k),
        Stage(f"class{k}.memory", _CLASS_MEM, (), k))),
    Stage("offchip", ("offchip",), ("vdd",)),
    Stage("placement", ("channels", "groups"), ("mix",)),
)


@dataclass(frozen=True)
class SpaceContext:
    """What decoding needs besides the choices: node, clock, supply range, workload."""

    node: TechNode
    clock_mhz: float
    vdd_lo_v: float
    vdd_hi_v: float
    workload: str
    op_names: tuple[str, ...]
    op_flops: np.ndarray = field(repr=False)          # per op name, summed over phases
    op_weight_bytes: np.ndarray = field(repr=False)   # per op name


@dataclass(frozen=True)
class Choices:
    """The values chosen so far (None = not chosen yet); one per decision of the space."""

    rows: int | None = None
    cols: int | None = None
    flit_bits: int | None = None
    weights: str | None = None
    classes: int | None = None
    layout: str | None = None
    shares: tuple[float, ...] | None = None
    tiles: tuple[Mapping[str, Any], ...] = ()
    offchip: str | None = None
    vdd_v: float | None = None
    channels: int | None = None
    groups: int | None = None
    mix: float | None = None
    stage: int = 0

    @property
    def n_tiles(self) -> int:
        return (self.rows or 0) * (self.cols or 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record of the point in the space."""
        return {"rows": self.rows, "cols": self.cols, "flit_bits": self.flit_bits,
                "weights": self.weights, "classes": self.classes, "layout": self.layout,
                "shares": None if self.shares is None else list(self.shares),
                "tiles": [dict(t) for t in self.tiles], "offchip": self.offchip,
                "vdd_v": self.vdd_v, "channels": self.channels, "groups": self.groups,
                "mix": self.mix}


def imem_min_kib(vlen: int) -> int:
    """Smallest IMEM option holding the kernel code of a ``vlen`` tile.

    The PPA model flags IMEM below ``ACCS + lanes x (1 + ACCS) + 32`` instruction words
    (violation 128, ``explorer/ppa/model.py``); the mask keeps every design above it.
    """
    words = C.ACCS + C.lanes_fp16(vlen) * (1 + C.ACCS) + 32
    return next(k for k in DISCRETE["imem_kib"] if k * 256 >= words)


def vdd_range(node: TechNode, clock_mhz: float) -> tuple[float, float]:
    """(lowest Vdd whose fmax meets ``clock_mhz``, node's Vdd max), by bisection."""
    lo, hi = node.vdd_min_v, node.vdd_max_v
    if float(node.fmax_mhz_at(lo)) >= clock_mhz:
        return lo, hi
    a, b = lo, hi
    for _ in range(60):
        m = 0.5 * (a + b)
        a, b = (a, m) if float(node.fmax_mhz_at(m)) >= clock_mhz else (m, b)
    return b, hi


def _only0(n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[0] = True
    return m


def masks(choices: Choices, ctx: SpaceContext) -> tuple[np.ndarray, ...]:
    """Legal options per discrete dim at the current stage (dims it ignores: option 0 only)."""
    st = STAGES[choices.stage]
    out = []
    for name in _DNAMES:
        n = len(DISCRETE[name])
        if name not in st.discrete or (st.tile_class is not None and st.tile_class >= (choices.classes or 1)):
            out.append(_only0(n))
            continue
        m = np.ones(n, bool)
        opts = DISCRETE[name]
        if name == "classes":
            m = np.array([k <= choices.n_tiles for k in opts])
        elif name == "imem_kib":
            need = imem_min_kib(choices.tiles[st.tile_class]["vlen"])
            m = np.array([k >= need for k in opts])
        elif name == "wmem_kind" and choices.weights == "off_chip":
            m = _only0(n)
        elif name == "offchip" and choices.weights == "off_chip":
            m = np.array([k is not None for k in opts])
        elif name == "channels" and choices.offchip is None:
            m = _only0(n)
        elif name == "groups":
            m = np.array([(choices.classes or 1) <= g <= choices.n_tiles for g in opts])
        out.append(m)
    return tuple(out)


def continuous_mask(choices: Choices) -> np.ndarray:
    """Continuous dims the current stage reads."""
    st = STAGES[choices.stage]
    used = set(st.continuous)
    if st.name == "layout":
        used = {"share0", "share1", "share2", "share3"}
    return np.array([n in used for n in CONTINUOUS])


def _project(value: int, mask: np.ndarray) -> int:
    """``value`` if legal, else the nearest legal option (ties: the lower one)."""
    value = min(max(int(value), 0), len(mask) - 1)
    if mask[value]:
        return value
    legal = np.flatnonzero(mask)
    return int(legal[np.argmin(np.abs(legal - value))])


def apply(choices: Choices, discrete: Sequence[int], continuous: Sequence[float],
          ctx: SpaceContext, mask: tuple[np.ndarray, ...] | None = None) -> tuple[Choices, bool]:
    """Take one step; returns the new choices and whether any choice had to be projected.

    ``mask`` is ``masks(choices, ctx)`` if the caller already has it.
    """
    st = STAGES[choices.stage]
    m = masks(choices, ctx) if mask is None else mask
    idx = {}
    projected = False
    for name in st.discrete:
        j = _DI[name]
        v = _project(int(discrete[j]), m[j])
        projected |= v != int(discrete[j])
        idx[name] = v
    cont = [min(max(float(x), -1.0), 1.0) if x == x else 0.0 for x in continuous]   # NaN -> 0

    def val(name: str) -> Any:
        return DISCRETE[name][idx[name]]

    nxt = choices.stage + 1
    if st.name == "mesh":
        ch = replace(choices, rows=val("rows"), cols=val("cols"), flit_bits=val("flit_bits"),
                     weights=val("weights"))
    elif st.name == "layout":
        k = val("classes")
        ch = replace(choices, classes=k, layout=val("layout") if k > 1 else LAYOUTS[0],
                     shares=tuple(float(cont[_CI[f"share{i}"]]) for i in range(k)))
    elif st.tile_class is not None:
        if st.tile_class >= (choices.classes or 1):
            ch = choices                                   # unused class: nothing to choose
        elif st.name.endswith(".core"):
            ch = replace(choices, tiles=(*choices.tiles, {n: val(n) for n in _CLASS_CORE}))
        else:
            t = dict(choices.tiles[st.tile_class], **{n: val(n) for n in _CLASS_MEM})
            ch = replace(choices, tiles=(*choices.tiles[:-1], t))
    elif st.name == "offchip":
        u = 0.5 * (cont[_CI["vdd"]] + 1.0)
        ch = replace(choices, offchip=val("offchip"),
                     vdd_v=round(float(ctx.vdd_lo_v + u * (ctx.vdd_hi_v - ctx.vdd_lo_v)), 6))
    else:  # placement
        ch = replace(choices, channels=val("channels") if choices.offchip is not None else 0,
                     groups=val("groups"), mix=round(float(0.5 * (cont[_CI["mix"]] + 1.0)), 6))
    return replace(ch, stage=nxt), projected


def _class_counts(shares: Sequence[float], n: int) -> np.ndarray:
    """Tiles per class: softmax(2 x share) of ``n`` by largest remainder, at least 1 each."""
    k = len(shares)
    w = np.exp(2.0 * np.asarray(shares, float))
    quota = w / w.sum() * (n - k)                 # one tile each is reserved
    base = np.floor(quota).astype(int)
    rest = n - k - base.sum()
    order = np.argsort(-(quota - base), kind="stable")
    base[order[:rest]] += 1
    return base + 1


def _layout_order(layout: str, rows: int, cols: int) -> np.ndarray:
    """Flat tile indices (r * cols + c) in the layout's fill order."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    if layout == "row_bands":
        key = [c, r]
    elif layout == "col_bands":
        key = [r, c]
    elif layout == "quadrants":
        key = [c, r, 2 * (r >= rows / 2) + (c >= cols / 2)]
    elif layout == "checkerboard":
        key = [c, r, (r + c) % 2]
    elif layout == "ring":
        key = [c, r, np.maximum(np.abs(r - (rows - 1) / 2), np.abs(c - (cols - 1) / 2))]
    else:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    return np.lexsort(key)            # last key is the primary one


def _grid(rows: int, cols: int, layout: str, shares: Sequence[float]) -> np.ndarray:
    counts = _class_counts(shares, rows * cols)
    flat = np.empty(rows * cols, np.int64)
    flat[_layout_order(layout, rows, cols)] = np.repeat(np.arange(len(counts)), counts)
    return flat.reshape(rows, cols)


def class_grid(rows: int, cols: int, layout: str, shares: Sequence[float]) -> tuple[tuple[int, ...], ...]:
    """Class index per tile: the layout's tile order filled by classes in proportion."""
    return tuple(tuple(int(k) for k in row) for row in _grid(rows, cols, layout, shares))


def _snake(rows: int, cols: int) -> np.ndarray:
    r, c = np.divmod(np.arange(rows * cols), cols)
    return r * cols + np.where(r % 2 == 0, c, cols - 1 - c)


@dataclass(frozen=True)
class _Realised:
    """A finished point of the space as arrays: grid, groups, op stages, tile classes."""

    grid: np.ndarray                  # [rows, cols] class index
    groups: tuple[np.ndarray, ...]    # per group: [n, 2] (row, col) tiles
    g_class: np.ndarray
    assign: np.ndarray                # per op name: group index
    tiles: tuple[TileConfig, ...]


def _realise(choices: Choices, ctx: SpaceContext) -> _Realised:
    if choices.stage != len(STAGES):
        raise ValueError(f"choices are at stage {choices.stage}, not complete ({len(STAGES)})")
    rows, cols, k = choices.rows, choices.cols, choices.classes
    grid = _grid(rows, cols, choices.layout, choices.shares)
    # Groups in class order; each class's tiles (snake order) split into contiguous chunks,
    # the class's share of the groups in proportion to its tiles (at least one each).
    snake = _snake(rows, cols)
    snake_cls = grid.ravel()[snake]
    per_class = [snake[snake_cls == j] for j in range(k)]
    sizes = np.array([len(p) for p in per_class], float)
    share = np.minimum(np.maximum(1, np.floor(sizes / sizes.sum() * choices.groups)), sizes).astype(int)
    while share.sum() < choices.groups and (share < sizes).any():
        gap = np.where(share < sizes, sizes / share, 0.0)
        share[int(np.argmax(gap))] += 1
    groups, g_class = [], []
    for j, (flat, n) in enumerate(zip(per_class, share, strict=True)):
        for part in np.array_split(flat, n):
            groups.append(np.stack(np.divmod(part, cols), axis=1))
            g_class.append(j)
    g_class = np.array(g_class)
    vlen = np.array([t["vlen"] for t in choices.tiles])
    n_g = np.array([len(g) for g in groups], float)
    lanes = C.lanes_fp16(vlen[g_class]) * n_g
    mix = choices.mix
    flops = ctx.op_flops / max(float(ctx.op_flops.sum()), 1.0)
    wsum = float(ctx.op_weight_bytes.sum())
    wshare = ctx.op_weight_bytes / wsum if wsum > 0 else flops
    cost = mix * flops + (1.0 - mix) * wshare
    capacity = mix * lanes / lanes.sum() + (1.0 - mix) * n_g / n_g.sum()
    assign = balanced_assignment(cost, capacity)
    wmem = np.zeros(k, np.int64)
    if choices.weights == "on_die":
        per_tile = np.bincount(assign, weights=ctx.op_weight_bytes, minlength=len(groups)) / n_g
        need = np.minimum(np.ceil(per_tile / (16 * 1024)).astype(np.int64) * 16, 262144)
        np.maximum.at(wmem, g_class, need)
    tiles = tuple(TileConfig(wmem_kib=int(wmem[i]), **{n: t[n] for n in (*_CLASS_CORE, *_CLASS_MEM)})
                  for i, t in enumerate(choices.tiles))
    return _Realised(grid, tuple(groups), g_class, assign, tiles)


def decode(choices: Choices, ctx: SpaceContext, name: str = "design") -> Design:
    """The complete design (placement and WMEM sizes included) of finished ``choices``."""
    z = _realise(choices, ctx)
    groups = tuple(TileGroup(tuple((int(r), int(c)) for r, c in g)) for g in z.groups)
    placement = Placement(workload=ctx.workload, groups=groups,
                          op_group={n: int(g) for n, g in zip(ctx.op_names, z.assign, strict=True)})
    mesh = MeshConfig(choices.rows, choices.cols, z.tiles,
                      tuple(tuple(int(x) for x in row) for row in z.grid), flit_bits=choices.flit_bits)
    memory = MemoryConfig(weights=choices.weights, offchip=choices.offchip, channels=choices.channels)
    return Design(name=name, node=ctx.node.name, mesh=mesh, memory=memory,
                  clock_mhz=ctx.clock_mhz, vdd_v=choices.vdd_v, placement=placement)


def to_batch(choices: Sequence[Choices], ctx: SpaceContext) -> DesignBatch:
    """The PPA model's arrays of finished ``choices``, built without :class:`Design` objects.

    Equal to ``from_designs([decode(c) for c in choices], tables)`` (tests/test_env.py
    checks it); O(tiles) numpy instead of per-tile Python validation.
    """
    zs = [_realise(c, ctx) for c in choices]
    d_n = len(zs)
    k_max = max(len(z.tiles) for z in zs)
    g_max = max(len(z.groups) for z in zs)
    kf = {f: np.zeros((d_n, k_max), np.int64) for f in
          ("count", "vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp", "dmem_kib",
           "imem_kib", "wmem_kib", "wmem_rom")}
    g = {f: np.zeros((d_n, g_max), float) for f in ("class", "tiles", "hops", "row", "col")}
    stage_end = np.zeros((d_n, g_max), np.int64)
    for i, z in enumerate(zs):
        kf["count"][i, :len(z.tiles)] = np.bincount(z.grid.ravel(), minlength=len(z.tiles))
        for j, t in enumerate(z.tiles):
            for f in ("vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp", "dmem_kib",
                      "imem_kib", "wmem_kib"):
                kf[f][i, j] = getattr(t, f)
            kf["wmem_rom"][i, j] = t.wmem_kind == "rom"
        for j, tiles in enumerate(z.groups):
            g["class"][i, j] = z.g_class[j]
            g["tiles"][i, j] = len(tiles)
            g["hops"][i, j] = group_hops([tuple(t) for t in tiles]) if len(tiles) < 2 else \
                _hops(tiles)
            g["row"][i, j], g["col"][i, j] = tiles.mean(axis=0)
        stage_end[i] = np.searchsorted(z.assign, np.arange(g_max), side="right")
    return DesignBatch(
        clock_mhz=np.full(d_n, ctx.clock_mhz), vdd_v=np.array([c.vdd_v for c in choices], float),
        rows=np.array([c.rows for c in choices], np.int64),
        cols=np.array([c.cols for c in choices], np.int64),
        flit_bits=np.array([c.flit_bits for c in choices], np.int64),
        weights_offchip=np.array([c.weights == "off_chip" for c in choices]),
        offchip_kind=np.array([-1 if c.offchip is None else OFFCHIP_KINDS.index(c.offchip)
                               for c in choices], np.int64),
        channels=np.array([c.channels for c in choices], np.int64),
        **{f"k_{f}": (a.astype(bool) if f == "wmem_rom" else a) for f, a in kf.items()},
        g_class=g["class"].astype(np.int64), g_tiles=g["tiles"].astype(np.int64),
        g_hops=g["hops"], g_row=g["row"], g_col=g["col"], stage_end=stage_end)


def _hops(tiles: np.ndarray) -> float:
    """:func:`explorer.placement.group_hops` on an [n, 2] array (same formula, vectorised)."""
    n = len(tiles)
    x = np.sort(tiles.astype(float), axis=0)
    w = 2 * np.arange(n) - n + 1
    return float((x * w[:, None]).sum()) / (n * (n - 1) / 2)


def _lg(x: float, lo: float, hi: float) -> float:
    """log2(x) mapped so that lo -> 0 and hi -> 1."""
    return (np.log2(x) - np.log2(lo)) / (np.log2(hi) - np.log2(lo))


_PER_CLASS = 11
#: Length of :func:`encode`'s vector.
DESIGN_FEATURES = 5 + len(LAYOUTS) + MAX_CLASSES + MAX_CLASSES * _PER_CLASS + len(DISCRETE["offchip"]) + 6


def encode(choices: Choices, ctx: SpaceContext) -> np.ndarray:
    """The partial design as features in [0, 1] (0 for anything not chosen yet)."""
    f = np.zeros(DESIGN_FEATURES, np.float32)
    if choices.rows is not None:
        f[0:5] = (choices.rows / 64, choices.cols / 64, _lg(choices.flit_bits, 64, 8192),
                  choices.weights == "off_chip", np.log2(choices.n_tiles) / 12)
    i = 5
    if choices.classes is not None:
        f[i + LAYOUTS.index(choices.layout)] = 1.0
        w = np.exp(2.0 * np.asarray(choices.shares))
        f[i + len(LAYOUTS):i + len(LAYOUTS) + choices.classes] = w / w.sum()
    i += len(LAYOUTS) + MAX_CLASSES
    for k, t in enumerate(choices.tiles):
        j = i + k * _PER_CLASS
        f[j:j + 8] = (1.0, t["fetch"] / 16, _lg(t["vlen"], 128, 2048), t["stations"] / 32,
                      t["xdp"] / 16, t["vdp"] / 16, t["xr_wp"] / 16, t["vr_wp"] / 16)
        if "dmem_kib" in t:
            f[j + 8:j + 11] = (_lg(t["dmem_kib"], 16, 512), _lg(t["imem_kib"], 1, 128),
                               t["wmem_kind"] == "sram")
    i += MAX_CLASSES * _PER_CLASS
    if choices.vdd_v is not None:
        f[i + DISCRETE["offchip"].index(choices.offchip)] = 1.0
        span = max(ctx.vdd_hi_v - ctx.vdd_lo_v, 1e-9)
        f[i + len(DISCRETE["offchip"])] = (choices.vdd_v - ctx.vdd_lo_v) / span
    i += len(DISCRETE["offchip"]) + 1
    if choices.groups is not None:
        f[i:i + 3] = (np.log2(max(choices.channels, 1)) / 6, np.log2(choices.groups) / 6, choices.mix)
    i += 3
    if choices.tiles:
        # Totals so far (classes without a count yet weigh as equal shares).
        counts = _class_counts(choices.shares, choices.n_tiles)[:len(choices.tiles)]
        lanes = sum(C.lanes_fp16(t["vlen"]) * n for t, n in zip(choices.tiles, counts, strict=True))
        f[i] = np.log2(max(lanes, 1)) / 19
        dmem = sum(t.get("dmem_kib", 0) * n for t, n in zip(choices.tiles, counts, strict=True))
        f[i + 1] = np.log2(max(dmem, 1)) / 22
    return np.clip(f, 0.0, 1.0)
