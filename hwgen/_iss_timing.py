"""Cycle model of the tile core for :class:`hwgen.iss.TileISS` (mirrors ``hwgen/tile``).

One :meth:`_Timing.cycle` call is one clock of ``Core`` while running: the issue logic
of ``hwgen/tile/issue.py`` over the queue head, the scoreboard and write-port booking of
``scoreboard.py`` and the fetch/queue update of ``frontend.py``, in the same order and
with the same conditions. The network interface is assumed to take a tx beat every
cycle (so the two-entry tx FIFO never fills and drains one cycle after a vsend).
"""

from __future__ import annotations

from collections import deque

from .isa import SCALAR_UNITS, SPECS, VECTOR_UNITS, RegFile, SysOp, Unit, VnetOp, latency

__all__ = ["_Timing"]

X, V, A = RegFile.X, RegFile.V, RegFile.A
_SINGLE = (Unit.BRANCH, Unit.LSU, Unit.SYS, Unit.VLSU, Unit.VMAC, Unit.VALU, Unit.VNET)


class _Slot:
    """Issue-relevant facts of one decoded instruction."""

    __slots__ = ("ins", "unit", "reads", "wfile", "wreg", "lat", "accum", "halt", "dmem", "wptr")

    def __init__(self, ins, tile):
        s = ins.spec
        self.ins, self.unit, self.accum = ins, s.unit, s.accumulate
        self.dmem, self.wptr = s.dmem, s.wptr
        self.halt = s.unit is Unit.SYS and s.op is SysOp.ECALL
        self.reads = [(f, getattr(ins, field)) for f, field in s.srcs]
        self.wfile = self.wreg = None
        self.lat = latency(s, tile) if s.latency_attr else 0
        if s.dst is not None and not (s.dst[0] is X and ins.rd == 0):
            self.wfile, self.wreg = s.dst[0], ins.rd


class _Timing:
    def __init__(self, iss):
        self.iss = iss
        t = self.t = iss.tile
        self.now = 0
        self.fetch_pc = 0             # next IMEM group (word address)
        self.f2: int | None = None    # word address of the group in the bank outputs
        self.queue: deque[int] = deque()
        self.cnt = {X: [0] * 32, V: [0] * t.vregs, A: [0] * t.accs}
        self.depth = max(latency(s, t) for s in SPECS if s.latency_attr)
        self.res = {X: [0] * self.depth, V: [0] * self.depth}
        self.ports = {X: t.xr_wp, V: t.vr_wp}
        self.sent_last_cycle = False
        self.cycles: int | None = None
        self._slots: dict[int, _Slot] = {}

    def _slot(self, word_pc: int) -> _Slot:
        s = self._slots.get(word_pc)
        if s is None:
            s = self._slots[word_pc] = _Slot(self.iss.instr_at(4 * word_pc), self.t)
        return s

    def _can_issue(self, j: int, s: _Slot, group: list[_Slot]) -> bool:
        t, cnt = self.t, self.cnt
        writes = [(p.wfile, p.wreg) for p in group if p.wfile is not None]
        for f, r in s.reads:
            if cnt[f][r] or (f, r) in writes:
                return False
        if s.wfile is not None and not s.accum:
            if cnt[s.wfile][s.wreg] or (s.wfile, s.wreg) in writes:
                return False
        if s.wfile in (X, V):
            same = sum(p.wfile is s.wfile and p.lat == s.lat for p in group)
            if self.res[s.wfile][s.lat - 1] + same >= self.ports[s.wfile]:
                return False
        if s.halt:
            return j == 0 and self._idle() and not self.sent_last_cycle
        scalar = sum(p.unit in SCALAR_UNITS for p in group)
        vector = sum(p.unit in VECTOR_UNITS for p in group)
        if s.unit in SCALAR_UNITS and scalar >= t.scalar_issue_per_cycle:
            return False
        if s.unit in VECTOR_UNITS and vector >= t.vector_issue_per_cycle:
            return False
        if s.unit in _SINGLE and any(p.unit is s.unit for p in group):
            return False
        if s.dmem and any(p.dmem for p in group):
            return False
        if s.wptr and any(p.wptr for p in group):
            return False
        if s.unit is Unit.VNET and s.ins.spec.op is VnetOp.RECV:
            return bool(self.iss.rx) and self.iss.rx[0][0] <= self.now
        return True

    def _idle(self) -> bool:
        return not any(any(c) for c in self.cnt.values()) and not any(
            any(r) for r in self.res.values())

    def cycle(self) -> bool:
        iss, t = self.iss, self.t
        if iss.halted:
            return False
        group: list[_Slot] = []
        redirect = None
        halt = False
        sent = False
        for j, word_pc in enumerate(list(self.queue)[:t.issue_width]):
            if any(p.unit is Unit.BRANCH for p in group):
                break                                 # a branch ends the group
            s = self._slot(word_pc)
            if not self._can_issue(j, s, group):
                break
            group.append(s)
            iss.pc = 4 * word_pc
            nxt = iss.execute(s.ins, self.now)
            if s.halt:
                halt = True
                break
            sent |= s.unit is Unit.VNET and s.ins.spec.op is VnetOp.SEND
            if s.unit is Unit.BRANCH and iss.taken:
                redirect = nxt // 4
        self._update_scoreboard(group)
        self._update_frontend(len(group), redirect)
        self.sent_last_cycle = sent
        if halt:
            iss.halted = True
            self.cycles = self.now + 1
            return False
        self.now += 1
        return True

    def _update_scoreboard(self, group: list[_Slot]) -> None:
        for regs in self.cnt.values():
            for r in range(len(regs)):
                regs[r] = max(0, regs[r] - 1)
        for s in group:
            if s.wfile is not None:
                self.cnt[s.wfile][s.wreg] = s.lat - 1
        for f, res in self.res.items():
            new = [res[d + 1] if d + 1 < self.depth else 0 for d in range(self.depth)]
            for s in group:
                if s.wfile is f and s.lat >= 2:
                    new[s.lat - 2] += 1
            self.res[f] = new

    def _update_frontend(self, issued: int, redirect: int | None) -> None:
        t = self.t
        st, fg, words = t.stations, t.fetch_group, t.imem_words
        enq = self.f2 is not None and st - len(self.queue) + issued >= fg and redirect is None
        fetch_now = redirect is None and (self.f2 is None or enq)
        if redirect is not None:
            self.queue.clear()
            self.fetch_pc, self.f2 = redirect % words, None
            return
        for _ in range(issued):
            self.queue.popleft()
        if enq:
            self.queue.extend((self.f2 + i) % words for i in range(fg))
        if fetch_now:
            self.f2 = self.fetch_pc
            self.fetch_pc = (self.fetch_pc + fg) % words
        elif enq:
            self.f2 = None

