"""The stored schedules of every element-wise pass over (vi, wp), and their stacked arrays.

:func:`pass_schedule` reads ``ewpass_table.json`` (written by ``python -m
explorer.ppa.modsched``, checked by a digest of the templates and the search) and falls
back to searching; :func:`pass_table` stacks every schedule for the vectorised model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import subprocess
from dataclasses import asdict, dataclass, replace
from datetime import date
from functools import cache, cached_property, lru_cache
from pathlib import Path

import numpy as np

from .. import contract as C
from .ewpass import (
    MAX_VI,
    MAX_WP,
    OP_UNITS,
    PASSES,
    SPAN_BLOCKS,
    Schedule,
    loop_shape,
    window_alignment,
)

__all__ = ["TABLE_PATH", "table_digest", "compute_schedule", "pass_schedule", "write_table",
           "PASS_IDS", "NO_PASS", "PassTable", "pass_table", "MAX_ISSUE"]

#: Where the schedules of every pass over (vi, wp) are stored (``python -m
#: explorer.ppa.modsched`` rewrites it; a template or search change makes it stale).
TABLE_PATH = Path(__file__).with_name("ewpass_table.json")
_log = logging.getLogger(__name__)


def table_digest() -> str:
    """Hash of everything the stored schedules depend on: templates and the search."""
    from . import modsched
    h = hashlib.sha256(repr(sorted(PASSES.items())).encode())
    h.update(repr(sorted(OP_UNITS.items())).encode())
    h.update(inspect.getsource(modsched).encode())
    h.update(f"{SPAN_BLOCKS} {MAX_VI} {MAX_WP} {C.VREGS}".encode())
    return h.hexdigest()[:16]


def _key(kind: str, index: int, vi: int, wp: int) -> str:
    return f"{kind}/{index}/{vi}/{wp}"


@lru_cache(maxsize=1)
def _stored() -> dict[str, Schedule]:
    try:
        data = json.loads(TABLE_PATH.read_text())
    except FileNotFoundError:
        return {}
    if data.get("_meta", {}).get("digest") != table_digest():
        _log.warning("%s is stale (templates or search changed): schedules are recomputed; "
                     "run python -m explorer.ppa.modsched to rewrite it", TABLE_PATH.name)
        return {}
    out = {}
    for k, e in data["entries"].items():
        e = dict(e)
        e["regs"] = {v: tuple(r) for v, r in e["regs"].items()}
        e["times"] = tuple(tuple(r) for r in e["times"])
        out[k] = Schedule(**{f: tuple(x) if isinstance(x, list) else x for f, x in e.items()})
    return out


def compute_schedule(kind: str, index: int, vi: int, wp: int) -> Schedule:
    """Search every template of the pass: the smallest ``II``, then the fewest ops."""
    from .modsched import mii, schedule
    p = PASSES[kind][index]
    best = None
    for v, ops in enumerate(p.templates):
        if best is not None and mii(ops, vi, wp) > best.ii:
            continue
        s = replace(schedule(ops, vi, wp, p.regs), variant=v)
        if best is None or (s.ii, len(ops)) < (best.ii, len(p.templates[best.variant])):
            best = s
    return best


@cache
def pass_schedule(kind: str, index: int, vi: int, wp: int) -> Schedule:
    """The schedule of pass ``index`` of ``kind`` at vector issue rate ``vi`` and ``wp``
    v-register write ports (clipped to 1..4): stored, or searched if the table is stale."""
    vi, wp = min(max(int(vi), 1), MAX_VI), min(max(int(wp), 1), MAX_WP)
    got = _stored().get(_key(kind, index, vi, wp))
    return got if got is not None else compute_schedule(kind, index, vi, wp)


def write_table(path: Path = TABLE_PATH) -> int:
    """Search every pass at every (vi, wp) and store the schedules; returns the count."""
    entries = {_key(k, i, vi, wp): asdict(compute_schedule(k, i, vi, wp))
               for k, ps in PASSES.items() for i in range(len(ps))
               for vi in range(1, MAX_VI + 1) for wp in range(1, MAX_WP + 1)}
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=path.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    meta = {"digest": table_digest(), "date": date.today().isoformat(), "git": rev,
            "how": "python -m explorer.ppa.modsched"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"_meta": meta, "entries": entries}, separators=(",", ":")) + "\n")
    tmp.replace(path)
    _stored.cache_clear()
    pass_schedule.cache_clear()
    return len(entries)


#: Issue widths and scalar issue rates :attr:`PassTable.alignment` covers: a tile issues
#: at most ``fetch`` (<= 16, ``explorer.design.TileConfig``) instructions a cycle.
MAX_ISSUE = 16

#: Every pass of every kind, in :data:`PASSES` order: the row of :func:`pass_table`.
PASS_IDS: dict[tuple[str, int], int] = {(k, i): n for n, (k, i) in enumerate(
    (k, i) for k, ps in PASSES.items() for i in range(len(ps)))}
#: The id of "no pass" (zero length), for kernels with fewer passes than others.
NO_PASS = len(PASS_IDS)


@dataclass(frozen=True)
class PassTable:
    """Every pass's schedules over (vi, wp), stacked for the vectorised model.

    Indexed ``[pass id, vi - 1, wp - 1]`` (row :data:`NO_PASS` is all zeros):
    ``blocks``/``cycles`` (steady state), ``span``, ``period``, ``reach``, ``n_ops``,
    ``external``, ``last_acc``, ``carry``; ``vec_use`` adds a residue axis (-1 beyond
    ``cycles``), ``lengths`` a run-length axis; ``mix`` is ``[4, ...]`` (VLSU, VALU,
    VMAC, non-linear per block). ``streams``/``stride_vectors`` are ``[pass id]``.
    """

    blocks: np.ndarray
    cycles: np.ndarray
    span: np.ndarray
    period: np.ndarray
    reach: np.ndarray
    n_ops: np.ndarray
    external: np.ndarray
    last_acc: np.ndarray
    carry: np.ndarray
    vec_use: np.ndarray
    lengths: np.ndarray
    mix: np.ndarray
    streams: np.ndarray
    stride_vectors: np.ndarray

    #: The scalar fields stacked by :attr:`fields`, in this order.
    FIELDS = ("cycles", "blocks", "n_ops", "period", "reach", "span", "external", "last_acc",
              "carry")

    @cached_property
    def fields(self) -> np.ndarray:
        """``[field, pass id * MAX_VI * MAX_WP + (vi - 1) * MAX_WP + wp - 1]``: one
        ``np.take`` gathers them all, each field a contiguous array (:attr:`FIELDS`, then
        the four ``mix`` counts)."""
        f = np.stack([getattr(self, n) for n in self.FIELDS] + list(self.mix))
        return f.reshape(len(f), -1)

    @cached_property
    def alignment(self) -> np.ndarray:
        """``[4, ((pass id * MAX_VI * MAX_WP + (vi - 1) * MAX_WP + wp - 1) * MAX_ISSUE
        + iw - 1) * MAX_ISSUE + si - 1]``: the loop-body alignment ``(r, cap_last,
        cap_total)`` (:func:`~explorer.ppa.ewpass.window_alignment`) and the blocks a loop
        iteration reads ahead (:func:`~explorer.ppa.ewpass.loop_shape`) at every issue width
        and scalar issue rate a tile can have (1..MAX_ISSUE)."""
        rate = np.arange(1, MAX_ISSUE + 1, dtype=float)
        vu = self.vec_use.reshape(self.vec_use.shape[0], MAX_VI * MAX_WP, 1, 1, -1)
        r, cap_last, cap_total = window_alignment(vu, rate[:, None], rate[None, :])

        def sched(a: np.ndarray) -> np.ndarray:
            return a.reshape(a.shape[0], MAX_VI * MAX_WP, 1, 1)

        _, ahead, _ = loop_shape(0, 1, sched(self.cycles), sched(self.blocks), sched(self.span), r)
        out = np.stack(np.broadcast_arrays(r, cap_last, cap_total, ahead)).astype(float)
        return out.reshape(4, -1)


@lru_cache(maxsize=1)
def pass_table() -> PassTable:
    """:func:`pass_schedule` of every pass at every (vi, wp)."""
    grid = {pid: [[pass_schedule(k, i, vi, wp) for wp in range(1, MAX_WP + 1)]
                  for vi in range(1, MAX_VI + 1)] for (k, i), pid in PASS_IDS.items()}
    shape = (NO_PASS + 1, MAX_VI, MAX_WP)
    r = max(s.cycles for g in grid.values() for row in g for s in row)
    out = {f: np.zeros(shape) for f in ("blocks", "cycles", "span", "period", "reach", "n_ops",
                                         "external", "last_acc", "carry")}
    out["blocks"][NO_PASS] = out["cycles"][NO_PASS] = out["period"][NO_PASS] = 1
    vec_use = np.full(shape + (r,), -1.0)
    lengths = np.zeros(shape + (SPAN_BLOCKS,))
    mix = np.zeros((4,) + shape)
    streams, stride = np.zeros(NO_PASS + 1), np.ones(NO_PASS + 1)
    for (k, i), pid in PASS_IDS.items():
        p = PASSES[k][i]
        streams[pid], stride[pid] = len(p.streams), p.stride_vectors
        for a, row in enumerate(grid[pid]):
            for b, s in enumerate(row):
                for f, v in (("blocks", s.blocks), ("cycles", s.cycles), ("span", s.span),
                             ("period", s.period), ("reach", s.reach),
                             ("n_ops", len(p.templates[s.variant])), ("external", s.external),
                             ("last_acc", s.last_acc), ("carry", s.carry)):
                    out[f][pid, a, b] = v
                vec_use[pid, a, b, :s.cycles] = s.vec_use
                lengths[pid, a, b] = s.lengths
                mix[:, pid, a, b] = p.mix(s.variant)
    return PassTable(**out, vec_use=vec_use, lengths=lengths, mix=mix, streams=streams,
                     stride_vectors=stride)


