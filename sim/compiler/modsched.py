"""Emission of software-pipelined element-wise passes (schedules: ``explorer.ppa.ewpass``).

A pass runs ``n`` blocks of a template under a settled modulo schedule (:class:`Schedule`:
program order ``order``, steady-state issue cycles ``times``, rotating registers).
:func:`emit_pipelined` writes, in program order:

* setup: each stream's pointer ``base + bias`` and the loop end ``t2``;
* prologue: the events issued before the first body cycle ``c0`` in the steady state;
* the loop body: the events of the steady-state cycles ``[c0, c0 + u * II)``, with each
  stream's pointer bump and the closing ``bne`` in free issue slots (latest first, the
  ``bne`` in the last cycle; ``ewpass.loop_extra`` extra cycles when they do not fit);
* epilogue: the remaining events.

With fewer than two iterations the pass is straight-line code. Pointer offsets: a
bias per stream keeps every body access inside the 12-bit immediate window; prologue and
epilogue accesses outside it move the pointer (an ``addi``).
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.design import TileConfig
from explorer.ppa.ewpass import (
    Schedule,
    VOp,
    loop_extra,
    loop_shape,
    slot_capacity,
    window_alignment,
)

from .emit import IMM_MAX, IMM_MIN, Asm
from .streams import Stream

__all__ = ["StreamSpec", "PipelinedPass", "emit_pipelined"]


@dataclass(frozen=True)
class StreamSpec:
    """A pointer register walking an operand: ``reg`` starts at ``base`` (a register)."""

    reg: str
    base: str
    stride: int
    row: int


def _operand_offsets(o: VOp) -> list[tuple[str, int]]:
    out = []
    for x in o.operands:
        if x.startswith("@"):
            name, _, off = x[1:].partition("+")
            out.append((name, int(off or 0)))
    return out


def _bias(accesses: list[tuple[int, int]], row: int) -> int | None:
    """A bias (multiple of ``row``) with every ``offset - pos - bias`` in the immediate
    window, for accesses ``(offset, pos)``; None if they span too far."""
    lo = min(o - p for o, p in accesses)
    hi = max(o - p for o, p in accesses)
    b = lo - IMM_MIN
    b -= b % row
    if hi - b > IMM_MAX - row + 1:
        return None
    return b


class PipelinedPass:
    """The emission plan of one pass: :meth:`setup` (pointers, loop end) may be emitted
    early, e.g. in the latency shadow of a row epilogue; :meth:`body` emits the blocks.

    ``u`` (blocks per iteration) must be a multiple of ``sch.period`` when the pass loops.
    """

    def __init__(self, ops: list[VOp], sch: Schedule, streams: dict[str, StreamSpec],
                 n_blocks: int, u: int, tile: TileConfig, end_reg: str = "t2"):
        self.ops, self.sch, self.streams, self.n, self.u = ops, sch, streams, n_blocks, u
        self.end = end_reg
        self.names = list(streams)
        iw, si = tile.issue_width, tile.scalar_issue_per_cycle
        r_last, cap_last, cap_total = (int(x) for x in window_alignment(sch.vec_use, iw, si))
        self.c0, self.ahead, n_it = (int(x) for x in loop_shape(n_blocks, u, sch.cycles, sch.blocks,
                                                                sch.span, r_last))
        self.looped = n_it >= 2
        self.n_it = n_it if self.looped else 0
        if self.looped and u % sch.period:
            raise ValueError(f"u must be a multiple of the register period {sch.period}, not {u}")
        self.extra = int(loop_extra(u, cap_total, cap_last, len(self.names), min(iw, si)))
        self._place_scalars(slot_capacity(sch.vec_use, iw, si))
        self.bias = self._biases()

    def real(self, j: int, i: int) -> int:
        """Steady-state issue cycle of op ``i`` of block ``j``."""
        return self.sch.real(j, i)

    @property
    def U(self) -> int:
        """Cycles of one loop body in the steady state."""
        return self.u // self.sch.blocks * self.sch.cycles

    def _place_scalars(self, cap) -> None:
        """Pointer bumps and the ``bne`` in free slots of the body, latest first."""
        c0, U, d = self.c0, self.U, self.sch.cycles
        room = {c: int(cap[c % d]) for c in range(c0, c0 + U)}
        self.in_body: dict[int, list[str]] = {}
        last = c0 + U - 1
        bumps = ["bump:" + n for n in self.names]       # the compared pointer's bump first
        if self.looped and self.extra == 0:
            self.in_body[last] = ["bne"]
            room[last] -= 1
            c = max(c for c in range(c0, last) if room[c] > 0)
            self.in_body.setdefault(c, []).insert(0, bumps.pop(0))
            room[c] -= 1
        for c in range(last, c0 - 1, -1):
            while bumps and room[c] > 0:
                self.in_body.setdefault(c, []).insert(0, bumps.pop(0))
                room[c] -= 1
        self.after = bumps + (["bne"] if self.extra else [])

    def _body_events(self) -> list[tuple[int, int, int]]:
        oii, order, U = self.sch.order_ii, self.sch.order, self.U
        return sorted((j * oii + order[i], j, i) for j in range(-self.ahead - 2, self.u + self.ahead + 2)
                      for i in range(len(self.ops)) if self.c0 <= self.real(j, i) < self.c0 + U)

    def _biases(self) -> dict[str, int]:
        """Per stream, a bias keeping every body access (and if possible every prologue
        and epilogue access) inside the 12-bit immediate window."""
        u, c0 = self.u, self.c0
        bumped = {n: min((c for c, ss in self.in_body.items() if "bump:" + n in ss), default=None)
                  for n in self.names}
        body: dict[str, list[tuple[int, int]]] = {n: [] for n in self.names}
        rest: dict[str, list[tuple[int, int]]] = {n: [] for n in self.names}
        if self.looped:
            for _, j, i in self._body_events():
                rc = self.real(j, i)
                for name, off in _operand_offsets(self.ops[i]):
                    s = self.streams[name]
                    b = bumped[name]
                    body[name].append((j * s.stride + off, u * s.stride if b is not None and rc > b else 0))
        tail0 = c0 + self.n_it * self.U
        for j in range(self.n):
            for i, o in enumerate(self.ops):
                rc = self.real(j, i)
                if self.looped and c0 <= rc < tail0:
                    continue
                jj = j - self.n_it * u if self.looped and rc >= tail0 else j
                for name, off in _operand_offsets(o):
                    rest[name].append((jj * self.streams[name].stride + off, 0))
        bias = {}
        for n in self.names:
            row = self.streams[n].row
            b = _bias(body[n] + rest[n], row) if body[n] + rest[n] else 0
            if b is None and body[n]:
                b = _bias(body[n], row)
                if b is None:
                    raise ValueError(f"loop body accesses of stream {n} span more than the "
                                     f"12-bit offset window (u={u})")
            if b is None:                             # straight line: moves where needed
                b = _bias(rest[n][:1], row) or 0
            bias[n] = b
        return bias

    def setup(self, asm: Asm) -> None:
        """Stream pointers (``base + bias``) and the loop end ``t2``."""
        for n in self.names:
            asm.addi(self.streams[n].reg, self.streams[n].base, self.bias[n])
        if self.looped:
            first = self.streams[self.names[0]]
            asm.addi(self.end, first.reg, self.n_it * self.u * first.stride)

    def body(self, asm: Asm) -> dict[str, int]:
        """Prologue, loop and epilogue; returns the loop parameters."""
        sch, ops, u, c0 = self.sch, self.ops, self.u, self.c0
        oii, order = sch.order_ii, sch.order
        st = {n: Stream(self.streams[n].reg, self.streams[n].stride, self.streams[n].row,
                        pos=self.bias[n], bias=self.bias[n]) for n in self.names}
        events = sorted((j * oii + order[i], j, i) for j in range(self.n) for i in range(len(ops)))

        def emit(j: int, i: int, base: int) -> None:
            o = ops[i]
            out = []
            for x in o.operands:
                if x.startswith("%"):
                    rs = sch.regs[x[1:]]
                    out.append(f"v{rs[j % len(rs)]}")
                elif x.startswith("@"):
                    name, _, off = x[1:].partition("+")
                    s = st[name]
                    out.append(f"{s.imm(asm, (j - base) * s.stride + int(off or 0))}({s.reg})")
                else:
                    out.append(x)
            asm.op(o.mnemonic, *out)

        info = {"u": u, "iterations": self.n_it, "cycles": sch.cycles, "blocks": sch.blocks,
                "extra": self.extra if self.looped else 0}
        if not self.looped:
            for _, j, i in events:
                emit(j, i, 0)
            return info
        U = self.U
        for _, j, i in events:
            if self.real(j, i) < c0:
                emit(j, i, 0)
        for n in self.names:                       # back to the body's reference point
            if st[n].pos != self.bias[n]:
                asm.addi(st[n].reg, st[n].reg, self.bias[n] - st[n].pos)
                st[n].pos = self.bias[n]
        loop = asm.label("ew")
        asm.place(loop)
        body = self._body_events()
        moves = sum(len(st[n].moves) for n in self.names)
        first = self.names[0]

        def scalar(s: str) -> None:
            if s == "bne":
                asm.bne_back(st[first].reg, self.end, loop)
                return
            n = s.split(":")[1]
            asm.addi(st[n].reg, st[n].reg, u * st[n].stride)
            st[n].pos += u * st[n].stride

        with asm.times(self.n_it):
            k = 0
            for c in range(c0, c0 + U):
                while k < len(body) and self.real(body[k][1], body[k][2]) == c:
                    emit(body[k][1], body[k][2], 0)
                    k += 1
                for s in self.in_body.get(c, []):
                    scalar(s)
            for s in self.after:
                scalar(s)
        if sum(len(st[n].moves) for n in self.names) != moves:
            raise AssertionError("a loop body access left the offset window")
        for n in self.names:
            st[n].pos -= u * st[n].stride
        base = self.n_it * u
        for _, j, i in events:
            if self.real(j, i) >= c0 + self.n_it * U:
                emit(j, i, base)
        return info


def emit_pipelined(asm: Asm, ops: list[VOp], sch: Schedule, streams: dict[str, StreamSpec],
                   n_blocks: int, u: int, tile: TileConfig) -> dict[str, int]:
    """Setup and body of a pass (:class:`PipelinedPass`) in one go."""
    p = PipelinedPass(ops, sch, streams, n_blocks, u, tile)
    p.setup(asm)
    return p.body(asm)
