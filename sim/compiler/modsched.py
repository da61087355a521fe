"""Modulo scheduling of element-wise block loops (software pipelining with 8 v registers).

A block template is a short dataflow graph (loads, VALU/VMAC ops, stores) run once per
block of L elements. :func:`schedule` finds the smallest initiation interval ``II``
(cycles between consecutive blocks) such that the contract's per-cycle limits hold
modulo II (one op per vector unit, vector/total issue width, the v-register write ports
in each op's write cycle) and the values' lifetimes fit the free v registers with
modulo variable expansion (a value living ``l`` cycles rotates over ``ceil(l / II)``
registers). :func:`emit_pipelined` then writes prologue, loop body (``u`` blocks, all
stages in flight) and epilogue in issue order, so in-order issue follows the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, lcm

from explorer.design import TileConfig
from hwgen.isa import BY_NAME, Unit

from .emit import Asm
from .streams import Stream

__all__ = ["VOp", "Schedule", "schedule", "emit_pipelined", "ii_lower_bound"]


@dataclass(frozen=True)
class VOp:
    """One instruction of a block template.

    ``operands`` are assembly operands where ``%name`` is a block value (a v register
    chosen by the scheduler) and ``@stream+off`` a memory operand on a pointer stream
    (``off`` bytes into the block). ``dst`` names the value written (None for stores,
    accumulates and other ops without a v result). ``carried`` marks a v register that
    is read and written by every block (a running max): it is not renamed.
    """

    mnemonic: str
    dst: str | None
    operands: tuple[str, ...]

    @property
    def srcs(self) -> tuple[str, ...]:
        return tuple(o[1:] for o in self.operands[1:] if o.startswith("%") and o[1:] != self.dst) \
            if self.dst is not None else tuple(o[1:] for o in self.operands if o.startswith("%"))

    @property
    def carried(self) -> bool:
        """Reads its own destination (a running max): one register per block residue."""
        return self.dst is not None and f"%{self.dst}" in self.operands[1:]

    @property
    def unit(self) -> Unit:
        return BY_NAME[self.mnemonic].unit

    def latency(self, tile: TileConfig) -> int:
        attr = BY_NAME[self.mnemonic].latency_attr
        return int(getattr(tile, attr)) if attr else 1


@dataclass(frozen=True)
class Schedule:
    ii: int
    times: tuple[int, ...]          # issue cycle of each op relative to its block's start
    regs: dict[str, tuple[int, ...]]  # value -> rotating physical v registers
    period: int                     # blocks after which the register names repeat

    @property
    def span(self) -> int:
        return max(self.times) + 1


def ii_lower_bound(ops: list[VOp], tile: TileConfig) -> int:
    """Resource bound of II: units, vector issue, total issue, v-register write ports."""
    units: dict[Unit, int] = {}
    for o in ops:
        units[o.unit] = units.get(o.unit, 0) + 1
    writes = sum(1 for o in ops if o.dst is not None)
    return max([1, *units.values(), ceil(len(ops) / tile.vector_issue_per_cycle),
                ceil(len(ops) / tile.issue_width), ceil(writes / tile.vr_wp)])


def _try(ops: list[VOp], tile: TileConfig, ii: int, free_regs: list[int]) -> Schedule | None:
    unit_use: dict[tuple[Unit, int], int] = {}
    vec_use = [0] * ii
    wp_use = [0] * ii
    lat = [o.latency(tile) for o in ops]
    producer = {o.dst: i for i, o in enumerate(ops) if o.dst is not None}
    times: list[int] = []
    for i, o in enumerate(ops):
        t = max([times[producer[s]] + lat[producer[s]] for s in o.srcs if s in producer] + [0])
        for _ in range(4 * ii):
            slot, wslot = t % ii, (t + lat[i] - 1) % ii
            if (unit_use.get((o.unit, slot), 0) == 0 and vec_use[slot] < tile.vector_issue_per_cycle
                    and vec_use[slot] < tile.issue_width
                    and (o.dst is None or wp_use[wslot] < tile.vr_wp)):
                break
            t += 1
        else:
            return None
        unit_use[(o.unit, t % ii)] = 1
        vec_use[t % ii] += 1
        if o.dst is not None:
            wp_use[(t + lat[i] - 1) % ii] += 1
        times.append(t)
    _sink(ops, lat, producer, times, ii, unit_use, vec_use, wp_use, tile)
    return _allocate(ops, lat, producer, times, ii, free_regs)


def _lifetimes(ops, lat, producer, times):
    last: dict[str, int] = {}
    for i, o in enumerate(ops):
        for s in o.srcs:
            last[s] = max(last.get(s, 0), times[i])
    return {v: (times[p], times[p] + max(last.get(v, times[p]) - times[p], lat[p]))
            for v, p in producer.items()}


def _sink(ops, lat, producer, times, ii, unit_use, vec_use, wp_use, tile) -> None:
    """Move loads (and other single-result ops) later, next to their first reader, when
    that shortens the total register lifetime: ASAP loads would hold registers idle."""
    readers: dict[str, list[int]] = {}
    for i, o in enumerate(ops):
        for s in o.srcs:
            readers.setdefault(s, []).append(i)
    for i in reversed(range(len(ops))):
        o = ops[i]
        if o.dst is None or o.carried or not readers.get(o.dst):
            continue
        if any(s in producer for s in o.srcs) and len(o.srcs) > 1:
            continue                      # moving it would stretch two sources
        latest = min(times[r] for r in readers[o.dst]) - lat[i]
        t0 = times[i]
        unit_use[(o.unit, t0 % ii)] = 0
        vec_use[t0 % ii] -= 1
        wp_use[(t0 + lat[i] - 1) % ii] -= 1
        best = t0
        for t in range(latest, t0, -1):
            if (unit_use.get((o.unit, t % ii), 0) == 0 and vec_use[t % ii] < tile.vector_issue_per_cycle
                    and vec_use[t % ii] < tile.issue_width and wp_use[(t + lat[i] - 1) % ii] < tile.vr_wp):
                best = t
                break
        times[i] = best
        unit_use[(o.unit, best % ii)] = 1
        vec_use[best % ii] += 1
        wp_use[(best + lat[i] - 1) % ii] += 1


def _allocate(ops, lat, producer, times, ii, free_regs) -> Schedule | None:
    """Registers by circular-arc colouring of the lifetimes over a period of P blocks."""
    life = _lifetimes(ops, lat, producer, times)
    carried = {o.dst for o in ops if o.carried}
    p = max([1] + [ceil((e + 1 - s) / ii) for s, e in life.values()])
    p = 1 << (p - 1).bit_length()
    span_t = p * ii
    regs: dict[str, list[int]] = {v: [0] * p for v in life}
    pool = list(free_regs)
    for v in carried:                     # running values keep one register per residue
        k = 1 << (max(1, ceil((life[v][1] - life[v][0]) / ii)) - 1).bit_length()
        if len(pool) < k:
            return None
        mine, pool = pool[:k], pool[k:]
        regs[v] = [mine[j % k] for j in range(p)]
    # A register is busy from its value's def to its last read inclusive (a def in the
    # cycle of another value's last read could be emitted before that read).
    arcs = sorted(((s + j * ii, e + 1 + j * ii, v, j) for v, (s, e) in life.items()
                   if v not in carried for j in range(p)))
    busy: dict[int, list[tuple[int, int]]] = {r: [] for r in pool}

    def overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
        # Half-open arcs on a circle of span_t cycles (normalised to start in [0, span_t)).
        a1, a0 = a1 - a0 + a0 % span_t, a0 % span_t
        b1, b0 = b1 - b0 + b0 % span_t, b0 % span_t
        for shift in (-span_t, 0, span_t):
            if a0 < b1 + shift and b0 + shift < a1:
                return True
        return False

    for s, e, v, j in arcs:
        for r in pool:
            if not any(overlaps(s, e, b0, b1) for b0, b1 in busy[r]):
                busy[r].append((s, e))
                regs[v][j] = r
                break
        else:
            return None
    return Schedule(ii, tuple(times), {v: tuple(r) for v, r in regs.items()}, p)


def schedule(ops: list[VOp], tile: TileConfig, free_regs: list[int]) -> Schedule:
    """The smallest feasible II (resource bound upward) for the block template ``ops``."""
    lo = ii_lower_bound(ops, tile)
    for ii in range(lo, lo + 64):
        s = _try(ops, tile, ii, free_regs)
        if s is not None:
            return s
    raise ValueError("no modulo schedule fits the v registers")


def _emit_op(asm: Asm, o: VOp, j: int, base: int, sch: Schedule, streams: dict[str, Stream]) -> None:
    out = []
    for x in o.operands:
        if x.startswith("%"):
            rs = sch.regs[x[1:]]
            out.append(f"v{rs[j % len(rs)]}")
        elif x.startswith("@"):
            name, _, off = x[1:].partition("+")
            s = streams[name]
            out.append(f"{s.imm(asm, (j - base) * s.stride + int(off or 0))}({s.reg})")
        else:
            out.append(x)
    asm.op(o.mnemonic, *out)


def emit_pipelined(asm: Asm, ops: list[VOp], sch: Schedule, streams: dict[str, Stream],
                   n_blocks: int, u: int) -> dict[str, int]:
    """Emit ``n_blocks`` blocks of ``ops`` software-pipelined, ``u`` blocks per iteration.

    Every stream's register must point ``stream.bias`` bytes past block 0 (``pos`` set);
    afterwards it points past block ``n_blocks``. ``u`` is rounded down to a multiple of
    the register period. Returns the loop parameters.
    """
    ii = sch.ii
    u = max(sch.period, (u // sch.period) * sch.period)
    span = sch.span
    ahead = (span - 1) // ii + 1          # blocks a window reaches beyond its own
    n_it = (n_blocks - ahead) // u if n_blocks > ahead else 0
    events = sorted(((j * ii + t, j, i) for j in range(n_blocks) for i, t in enumerate(sch.times)))
    d0 = span - 1                           # first cycle of the steady state
    if n_it < 2:
        for _, j, i in events:
            _emit_op(asm, ops[i], j, 0, sch, streams)
        for s in streams.values():
            s.pos -= n_blocks * s.stride
        return {"u": u, "iterations": 0, "ii": ii}
    U = u * ii
    for tau, j, i in events:
        if tau < d0:
            _emit_op(asm, ops[i], j, 0, sch, streams)
    first = next(iter(streams.values()))
    for s in streams.values():           # back to the loop's reference point
        if s.pos != s.bias:
            asm.addi(s.reg, s.reg, s.bias - s.pos)
            s.pos = s.bias
    asm.addi("t2", first.reg, n_it * u * first.stride)
    loop = asm.label("ew")
    asm.place(loop)
    with asm.times(n_it):
        for s in streams.values():
            asm.addi(s.reg, s.reg, u * s.stride)
            s.pos += u * s.stride
        body = [(tau, j, i) for tau, j, i in
                ((j * ii + t, j, i) for j in range(-ahead - 1, u + ahead + 1)
                 for i, t in enumerate(sch.times)) if d0 <= tau < d0 + U]
        for _, j, i in sorted(body):
            _emit_op(asm, ops[i], j, 0, sch, streams)
        for s in streams.values():
            if s.pos != s.bias + u * s.stride:
                asm.addi(s.reg, s.reg, s.bias + u * s.stride - s.pos)
                s.pos = s.bias + u * s.stride
        asm.bne_back(first.reg, "t2", loop)
    for s in streams.values():
        s.pos -= u * s.stride
    base = n_it * u
    for tau, j, i in events:
        if tau >= d0 + n_it * U:
            _emit_op(asm, ops[i], j, base, sch, streams)
    for s in streams.values():
        s.pos -= (n_blocks - base) * s.stride
    return {"u": u, "iterations": n_it, "ii": ii}
