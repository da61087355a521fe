"""Fetch unit: ``fetch`` interleaved IMEM banks, one group register, the issue queue.

Timing (``docs/isa.md``): the pc addresses IMEM in cycle c (F1), the group of
``fetch_group`` words is in the bank outputs in c+1 (F2) and is written into the queue at
the end of c+1 if the queue then has ``fetch_group`` free entries (entries issued in c+1
count as free); otherwise it waits in F2 and F1 stalls. Queue entries issue from c+2.
A redirect (taken branch/jump, resolved at issue in cycle t) empties the queue and F2
and loads the pc; the target's group is read in t+1, enqueued in t+2 and issues in t+3:
the ``branch_penalty_cycles`` = 2 bubble of the contract.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .memories import memory_bank
from .pipe import pick

__all__ = ["SLOT", "HostWordPort", "Frontend", "FRONTEND_PENALTY_CYCLES"]

SLOT = data.StructLayout({"insn": 32, "valid": 1})

#: Bubble cycles after a redirect, fixed by the structure above (registered redirect
#: + synchronous IMEM read); Core checks it against TileConfig.branch_penalty_cycles.
FRONTEND_PENALTY_CYCLES = 2


class HostWordPort(wiring.Signature):
    """Word access to a memory from the host port (only while the core is stopped)."""

    def __init__(self, addr_bits: int):
        super().__init__({"ce": Out(1), "we": Out(1), "addr": Out(addr_bits),
                          "wdata": Out(32), "rdata": In(32)})


def _divmod(value, divisor: int):
    """(value // divisor, value % divisor) for a constant divisor (slices for powers of 2)."""
    if divisor & (divisor - 1) == 0:
        k = divisor.bit_length() - 1
        return value[k:], value[:k]
    return value // divisor, value % divisor


class Frontend(wiring.Component):
    """IMEM, fetch and the in-order issue queue of one tile.

    Members
    -------
    run, start : In(1)
        Core running; start pulse (pc <- 0, queue and F2 emptied).
    redirect, target : In
        Taken branch/jump this cycle and its word-address target.
    issued : In
        Instructions issued from the queue head this cycle.
    slots : Out(ArrayLayout(SLOT, issue_width))
        The first ``issue_width`` queue entries; slot j has pc ``head_pc + j`` (words).
    host : In(HostWordPort)
        IMEM word access while stopped.
    """

    def __init__(self, tile, imem_init=(), *, shared: bool = False):
        self._t, self._shared = tile, shared
        self._init = [int(w) for w in imem_init]
        if len(self._init) > tile.imem_words:
            raise ValueError(f"imem_init has {len(self._init)} words, more than IMEM's "
                             f"{tile.imem_words}")
        self.pc_bits = ceil_log2(tile.imem_words)
        super().__init__({
            "run": In(1), "start": In(1), "redirect": In(1), "target": In(self.pc_bits),
            "issued": In(range(tile.issue_width + 1)),
            "slots": Out(data.ArrayLayout(SLOT, tile.issue_width)),
            "head_pc": Out(self.pc_bits),
            "host": In(HostWordPort(self.pc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        t = self._t
        nb, fg, st, iw = t.fetch, t.fetch_group, t.stations, t.issue_width
        depth = t.imem_bank_words

        pc = Signal(self.pc_bits)
        f2_valid = Signal()
        f2_b0 = Signal(range(max(2, nb)))     # >= 1 bit: no zero-width wires
        entries = [Signal(32, name=f"q{i}") for i in range(st)]
        head = Signal(range(max(2, st)))
        count = Signal(range(st + 1))
        head_pc = Signal(self.pc_bits)

        # F1: bank b holds words with index % nb == b; a group may wrap to the next row.
        fetch_now = Signal()
        enq = Signal()
        r0, b0 = _divmod(pc, nb)
        hr, hb = _divmod(self.host.addr, nb)
        host_b = Signal(range(max(2, nb)))
        banks = []
        for b in range(nb):
            bank = memory_bank(m, f"imem{b}", depth, 32, shared=self._shared,
                               init=self._init[b::nb])
            banks.append(bank)
            host_hit = self.host.ce & (hb == b)
            m.d.comb += [bank.ce.eq(Mux(self.run, fetch_now, host_hit)),
                         bank.we.eq(~self.run & host_hit & self.host.we),
                         # words before b0 in the group live one row further on
                         bank.addr.eq(Mux(self.run, r0 + (b0 > b) if b < nb - 1 else r0, hr)),
                         bank.wdata.eq(self.host.wdata)]
        with m.If(self.host.ce & ~self.host.we):
            m.d.sync += host_b.eq(hb)
        m.d.comb += self.host.rdata.eq(pick([b.rdata for b in banks], host_b))

        # F2 -> queue
        group = []
        for j in range(fg):
            bank_j = Signal(range(max(2, nb)), name=f"group_bank{j}")
            m.d.comb += bank_j.eq(Mux(f2_b0 + j >= nb, f2_b0 + j - nb, f2_b0 + j))
            group.append(pick([b.rdata for b in banks], bank_j))
        free_after_issue = st - count + self.issued
        m.d.comb += [enq.eq(f2_valid & (free_after_issue >= fg) & ~self.redirect),
                     fetch_now.eq(self.run & ~self.redirect & (~f2_valid | enq))]
        tail = Signal(range(max(2, st)))
        m.d.comb += tail.eq(Mux(head + count >= st, head + count - st, head + count))
        with m.If(enq):
            for e in range(st):
                off = Signal(range(max(2, st)), name=f"off{e}")
                # (e - tail) mod st; the last entry is never below tail
                m.d.comb += off.eq(Mux(tail <= e, e - tail, e + st - tail) if e < st - 1
                                   else e - tail)
                with m.If(off < fg):
                    m.d.sync += entries[e].eq(pick(group, off))

        # slots seen by the issue logic
        for j in range(iw):
            entry_j = Signal(range(max(2, st)), name=f"slot_entry{j}")
            m.d.comb += [entry_j.eq(Mux(head + j >= st, head + j - st, head + j)),
                         self.slots[j].insn.eq(pick(entries, entry_j)),
                         self.slots[j].valid.eq(count > j)]
        m.d.comb += self.head_pc.eq(head_pc)

        new_head = head + self.issued
        with m.If(self.start | self.redirect):
            m.d.sync += [pc.eq(Mux(self.start, 0, self.target)), f2_valid.eq(0),
                         head.eq(0), count.eq(0), head_pc.eq(Mux(self.start, 0, self.target))]
        with m.Elif(self.run):
            m.d.sync += [head.eq(Mux(new_head >= st, new_head - st, new_head)),
                         count.eq(count - self.issued + Mux(enq, fg, 0)),
                         head_pc.eq(head_pc + self.issued),
                         f2_valid.eq(fetch_now | (f2_valid & ~enq))]
            with m.If(fetch_now):
                m.d.sync += [pc.eq(pc + fg), f2_b0.eq(b0)]
        return m
