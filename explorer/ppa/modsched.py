"""Modulo scheduling of element-wise block templates for an in-order core (``ewpass`` search).

The core issues in program order, each instruction as early as its operands, its unit,
the group's issue slots and its write cycle's register port allow (``docs/isa.md``,
"Timing"). So a kernel chooses only the *program order* of the pipelined blocks; the
timing is what that issue rule makes of it. :func:`schedule`:

* takes candidate orders from modulo placements at ``II`` from the resource bound up
  (depth first, earliest times first, subtrees cut by a register-cycle lower bound, and
  each also with its loads moved next to their first reader);
* allocates v registers on the *order* (a value occupies its register from its
  definition to its last read in program order; in-order issue makes any allocation
  that is disjoint in program order correct and stall-free), by circular-arc colouring
  over a register-rotation period of blocks;
* *realizes* the order by simulating that issue rule from a cold start
  (:func:`simulate`), finds the steady state (``P`` blocks every ``D`` cycles, ``P`` <= 4)
  and keeps the fastest ``D / P``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from math import ceil, lcm

from .. import contract as C
from .ewpass import SPAN_BLOCKS, Schedule, VOp

__all__ = ["schedule", "mii", "simulate", "CARRY_LATENCY"]

#: Latency of the op that updates a carried value (a running max: a VALU op).
CARRY_LATENCY = C.VALU_LATENCY


def mii(ops: tuple[VOp, ...], vi: int, wp: int) -> int:
    """Resource bound of the cycles per block: units, vector issue, v write ports."""
    units = Counter(o.unit for o in ops)
    writes = sum(o.writes_v for o in ops)
    return max([1, *units.values(), ceil(len(ops) / vi), ceil(writes / wp)])


def _deps(ops: tuple[VOp, ...]) -> list[list[int]]:
    producer = {o.dst: i for i, o in enumerate(ops) if o.dst is not None}
    return [[producer[s] for s in o.srcs if s in producer] for o in ops]


def _carry_regs(ii: int) -> int:
    """Registers a carried value rotates over: enough that its latency fits ``ii``."""
    k = max(1, ceil(CARRY_LATENCY / ii))
    return 1 << (k - 1).bit_length()


def _events(n_ops: int, order: tuple[int, ...], order_ii: int, n_blocks: int):
    return sorted((j * order_ii + t, j, i) for j in range(n_blocks) for i, t in enumerate(order[:n_ops]))


def simulate(ops, deps, order, order_ii, vi, wp, n_blocks, carry) -> list[list[int]]:
    """In-order issue of ``n_blocks`` blocks in program order ``order``: each op issues in
    the first cycle, not before its predecessor's, where its operands are ready, its unit
    is free, the group has a vector slot and its write cycle a free v-register write port
    (booked at issue). A carried value is read ``carry`` blocks after it was written.
    Returns ``issue[j][i]``."""
    lat = [o.latency for o in ops]
    issue = [[0] * len(ops) for _ in range(n_blocks)]
    units: dict[int, set[str]] = defaultdict(set)
    vec: Counter[int] = Counter()
    wbook: Counter[int] = Counter()
    c = 0
    for _, j, i in _events(len(ops), order, order_ii, n_blocks):
        o = ops[i]
        for p in deps[i]:
            c = max(c, issue[j][p] + lat[p])
        if o.carried and j >= carry:
            c = max(c, issue[j - carry][i] + lat[i])
        while (o.unit in units[c] or vec[c] >= vi
               or (o.writes_v and wbook[c + lat[i] - 1] >= wp)):
            c += 1
        issue[j][i] = c
        units[c].add(o.unit)
        vec[c] += 1
        if o.writes_v:
            wbook[c + lat[i] - 1] += 1
    return issue


def _steady(issue, n_ops: int, tail: int) -> tuple[int, int, tuple[tuple[int, ...], ...]] | None:
    """``(P, D, times)``: ``P`` blocks every ``D`` cycles from the middle of a run on (the
    last ``tail`` blocks drain), ``times[s]`` the cycles of block ``j0 + s`` from ``j0``'s
    period start (``j0`` a multiple of ``P``)."""
    n = len(issue) - tail
    for p in (1, 2, 3, 4):
        j0 = (n // 2) // p * p
        d = issue[j0 + p][0] - issue[j0][0]
        if d >= 1 and all(issue[j + p][i] - issue[j][i] == d
                          for j in range(j0 - 2 * p, n - p) for i in range(n_ops)):
            base = min(issue[j0])
            return p, d, tuple(tuple(t - base for t in issue[j0 + s]) for s in range(p))
    return None


def _stable(ops, deps, times, ii, vi, wp, carry) -> bool:
    """Whether in-order issue would follow the placement ``times`` in the steady state:
    no op could issue earlier, from its program-order predecessor's cycle on (an op
    before it in its own cycle; or operands not ready, its unit or all vector slots taken
    in the predecessor's cycle, or its write cycle's ports booked by ops issued by then).
    A cheap filter: such placements are simulated first."""
    n = len(ops)
    lat = [o.latency for o in ops]
    res = [t % ii for t in times]
    occupied = sorted(set(res))
    for i in range(n):
        t, r = times[i], res[i]
        if any(res[y] == r and (times[y] > t or (times[y] == t and y < i)) for y in range(n)):
            continue
        earlier = [x for x in occupied if x < r]
        t_p = t - (r - earlier[-1] if earlier else r - occupied[-1] + ii)
        ready = max([times[p] + lat[p] for p in deps[i]] + [t_p])
        if ops[i].carried:
            ready = max(ready, t - carry * ii + lat[i])
        users = [y for y in range(n) if res[y] == t_p % ii]
        for c in range(ready, t):
            if c == t_p and (any(ops[y].unit == ops[i].unit for y in users) or len(users) >= vi):
                continue
            if ops[i].writes_v:
                w = c + lat[i] - 1
                if sum(1 for y in range(n) if ops[y].writes_v and (w - lat[y] + 1 - times[y]) % ii == 0
                       and w - lat[y] + 1 <= c) >= wp:
                    continue
            return False
    return True


def _positions(n_ops: int, order: tuple[int, ...], order_ii: int) -> list[int]:
    """Program-order position of op i of block j is ``j * n_ops + q[i]``."""
    stages = (max(order) - min(order)) // order_ii + 2
    ev = _events(n_ops, order, order_ii, 3 * stages)
    at = {(j, i): k for k, (_, j, i) in enumerate(ev)}
    j = stages
    return [at[(j, i)] - j * n_ops for i in range(n_ops)]


def _allocate(ops, deps, q, n_regs, carry) -> tuple[dict[str, tuple[int, ...]], int] | None:
    """Registers by circular-arc colouring of program-order lifetimes (a value holds its
    register from its definition to its last read) over a period of ``p`` blocks."""
    n = len(ops)
    last: dict[int, int] = {}
    for i, ds in enumerate(deps):
        for p in ds:
            last[p] = max(last.get(p, q[p]), q[i])
    life = {ops[p].dst: (q[p], last.get(p, q[p])) for p in range(n)
            if ops[p].dst is not None and not ops[p].carried}
    carried = sorted(o.dst for o in ops if o.carried)
    per = max([1] + [ceil((e + 1 - s) / n) for s, e in life.values()] + [carry for _ in carried])
    per = 1 << (per - 1).bit_length()
    circle = per * n
    regs: dict[str, list[int]] = {v: [0] * per for v in life}
    pool = list(range(n_regs))
    for v in carried:
        if len(pool) < carry:
            return None
        mine, pool = pool[:carry], pool[carry:]
        regs[v] = [mine[j % carry] for j in range(per)]
    arcs = sorted((s + j * n, e + 1 + j * n, v, j) for v, (s, e) in life.items() for j in range(per))
    busy: dict[int, list[tuple[int, int]]] = {r: [] for r in pool}

    def overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
        a1, a0 = a1 - a0 + a0 % circle, a0 % circle
        b1, b0 = b1 - b0 + b0 % circle, b0 % circle
        return any(a0 < b1 + sh and b0 + sh < a1 for sh in (-circle, 0, circle))

    for s, e, v, j in arcs:
        for r in pool:
            if not any(overlaps(s, e, b0, b1) for b0, b1 in busy[r]):
                busy[r].append((s, e))
                regs[v][j] = r
                break
        else:
            return None
    return {v: tuple(r) for v, r in regs.items()}, per


def _placements(ops, deps, ii, vi, wp, n_regs, budget):
    """Modulo-feasible placements, depth first in template order, earliest times first.

    A subtree is cut when a lower bound of the register-cycles it needs exceeds
    ``n_regs * ii`` (values live at least to their readers' earliest times; a
    load's value from its first reader, where it may be sunk).
    """
    lat = [o.latency for o in ops]
    n = len(ops)
    readers: list[list[int]] = [[] for _ in ops]
    for i, ds in enumerate(deps):
        for p in ds:
            readers[p].append(i)
    dist = [[-1] * n for _ in range(n)]
    for i in range(n):
        dist[i][i] = 0
        for j in range(i + 1, n):
            dist[i][j] = max([dist[i][p] + lat[p] for p in deps[j] if dist[i][p] >= 0] + [-1])
    counted = [bool(readers[p]) and ops[p].writes_v and not ops[p].carried for p in range(n)]
    loads = [not deps[p] for p in range(n)]
    far = [max((dist[p][r] for r in readers[p]), default=0) + 1 for p in range(n)]
    last_reader = [max(readers[p], default=-1) for p in range(n)]
    unit_use: set[tuple[str, int]] = set()
    vec_use = [0] * ii
    wp_use = [0] * ii
    times = [0] * n
    nodes = [0]
    cap = n_regs * ii

    def bound(placed: int) -> int:
        est = times[:placed] + [0] * (n - placed)
        for i in range(placed, n):
            est[i] = max([est[p] + lat[p] for p in deps[i]], default=0)
        total = 0
        for p in range(n):
            if not counted[p]:
                continue
            if loads[p]:
                if last_reader[p] < placed:
                    rt = [times[r] for r in readers[p]]
                    total += max(max(rt) - min(rt) + lat[p], lat[p]) + 1
                else:
                    total += lat[p] + 1
            elif p < placed:
                total += max(max(est[r] for r in readers[p]) - times[p], lat[p]) + 1
            else:
                total += far[p]
        return total

    def rec(i):
        if nodes[0] > budget:
            return
        nodes[0] += 1
        if i == n:
            yield tuple(times)
            return
        o = ops[i]
        est = max([times[p] + lat[p] for p in deps[i]] + [0])
        for t in range(est, est + ii):
            slot, wslot = t % ii, (t + lat[i] - 1) % ii
            if (o.unit, slot) in unit_use or vec_use[slot] >= vi:
                continue
            if o.writes_v and wp_use[wslot] >= wp:
                continue
            times[i] = t
            if bound(i + 1) > cap:
                continue
            unit_use.add((o.unit, slot))
            vec_use[slot] += 1
            if o.writes_v:
                wp_use[wslot] += 1
            yield from rec(i + 1)
            unit_use.discard((o.unit, slot))
            vec_use[slot] -= 1
            if o.writes_v:
                wp_use[wslot] -= 1

    yield from rec(0)


def _sunk(ops, deps, times, ii) -> tuple[int, ...]:
    """Loads moved next to their first reader (same slot residue, so still feasible)."""
    t = list(times)
    readers: dict[int, list[int]] = defaultdict(list)
    for i, ds in enumerate(deps):
        for p in ds:
            readers[p].append(i)
    for i, o in enumerate(ops):
        if deps[i] or o.carried or not readers.get(i):
            continue
        latest = min(t[r] for r in readers[i]) - o.latency
        t[i] += max(0, (latest - t[i]) // ii) * ii
    return tuple(t)


def schedule(ops: tuple[VOp, ...], vi: int, wp: int, n_regs: int = C.VREGS,
             budget: int = 1500, sims: int = 60) -> Schedule:
    """The fastest schedule found for ``ops`` (smallest cycles per block, then fewest
    cycles to fill and drain); module docstring. At most ``sims`` realizations per
    placement ``II``; stops at the resource bound or once placements are slower."""
    ops = tuple(ops)
    deps = _deps(ops)
    lo = mii(ops, vi, wp)
    best: Schedule | None = None
    for order_ii in range(lo, lo + 64):
        if best is not None and order_ii > best.ii + 1:
            break
        carry = _carry_regs(order_ii)
        seen: set[tuple[int, ...]] = set()
        tries = 0
        for cand in _placements(ops, deps, order_ii, vi, wp, n_regs, budget):
            for order in (_sunk(ops, deps, cand, order_ii), cand):
                order = tuple(t - min(order) for t in order)
                if order in seen:
                    continue
                seen.add(order)
                # Placements in-order issue follows are realized first; others while
                # the simulation budget lasts (the core may still settle well on them).
                if not _stable(ops, deps, order, order_ii, vi, wp, carry):
                    if tries >= sims:
                        continue
                    tries += 1
                q = _positions(len(ops), order, order_ii)
                alloc = _allocate(ops, deps, q, n_regs, carry)
                if alloc is None:
                    continue
                s = _realize(ops, deps, order_ii, order, carry, vi, wp, *alloc)
                if s is not None and (best is None or (s.ii, s.lengths[-1]) < (best.ii, best.lengths[-1])):
                    best = s
                    if best.ii <= lo:
                        return best
    if best is None:
        raise ValueError("no modulo schedule fits the v registers")
    return best


def _realize(ops, deps, order_ii, order, carry, vi, wp, regs, period) -> Schedule | None:
    """The steady state, run lengths and timing facts of one program order."""
    n = len(ops)
    stages = (max(order) - min(order)) // order_ii + 2
    issue = simulate(ops, deps, order, order_ii, vi, wp, max(4 * stages + 16, SPAN_BLOCKS), carry)
    st = _steady(issue, n, stages)
    if st is None:
        return None
    p, d, times = st
    vec_use = [0] * d
    for row in times:
        for t in row:
            vec_use[t % d] += 1
    lengths, external, last_acc = [0], -1, -1
    for m in range(1, SPAN_BLOCKS):
        run = simulate(ops, deps, order, order_ii, vi, wp, m, carry)
        first = min(min(b) for b in run)
        end = max(max(b) for b in run) + 1
        lengths.append(end - first)
        if m == SPAN_BLOCKS - 1:
            ext = [run[0][i] - first for i, o in enumerate(ops) if o.external]
            external = min(ext) if ext else -1
            acc = [run[j][i] for j in range(m) for i, o in enumerate(ops) if o.unit == "VMAC"]
            last_acc = max(acc) - end if acc else -1
    tail = lengths[SPAN_BLOCKS - 1 - 2 * p:]
    if any(tail[k + p] - tail[k] != d for k in range(len(tail) - p)):
        return None                     # run lengths do not grow by D every P blocks
    return Schedule(variant=0, order_ii=order_ii, order=order, carry=carry, regs=regs,
                    period=lcm(period, p),
                    blocks=p, cycles=d, times=times, vec_use=tuple(vec_use),
                    lengths=tuple(lengths), external=external, last_acc=last_acc)


if __name__ == "__main__":
    import sys

    from .ewtable import TABLE_PATH, write_table
    print(f"{write_table()} schedules written to {TABLE_PATH}", file=sys.stderr)
