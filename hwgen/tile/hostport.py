"""Host access to IMEM/DMEM/WMEM through the ``mem`` port while the core is stopped.

Requests are 32-bit word reads/writes at byte addresses (``sel`` 0 IMEM, 1 DMEM,
2 WMEM). A read's data comes from the synchronous memory one cycle later and is held in
the response beat until the network interface takes it; no new request is accepted
while a response waits, so the memory output cannot change under it.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .frontend import HostWordPort
from .memories import WORD_BITS
from .signature import MemPortSignature, MemSel
from .vlsu import RowPort

__all__ = ["HostPort"]


class HostPort(wiring.Component):
    """Decodes ``mem`` requests into IMEM word accesses and DMEM/WMEM row accesses."""

    def __init__(self, tile, pc_bits: int):
        self._t = tile
        members = {"mem": Out(MemPortSignature()), "running": In(1),
                   "imem": Out(HostWordPort(pc_bits)),
                   "dmem": Out(RowPort(ceil_log2(tile.dmem_rows), tile.dmem_port_bits))}
        if tile.wmem_rows:
            members["wmem"] = Out(RowPort(max(1, ceil_log2(tile.wmem_rows)), tile.wmem_port_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        t = self._t
        req, resp = self.mem.req, self.mem.resp
        p = req.payload
        m.d.comb += req.ready.eq(~self.running & (~resp.valid | resp.ready))
        accept = req.valid & req.ready
        word = p.addr[2:]
        m.d.comb += [self.imem.ce.eq(accept & (p.sel == MemSel.IMEM)), self.imem.we.eq(p.we),
                     self.imem.addr.eq(word), self.imem.wdata.eq(p.wdata)]
        rows = [(MemSel.DMEM, self.dmem, t.dmem_port_bits)]
        if t.wmem_rows:
            rows.append((MemSel.WMEM, self.wmem, t.wmem_port_bits))
        resp_sel = Signal(2)
        resp_word = Signal(range(max(2, t.vlen // WORD_BITS)))
        answers = {MemSel.IMEM: self.imem.rdata}
        for sel, port, width in rows:
            words = width // WORD_BITS
            k = ceil_log2(words)
            m.d.comb += [port.ce.eq(accept & (p.sel == sel)), port.addr.eq(word[k:]),
                         port.we.eq(Mux(p.we, 1 << word[:k], 0)),
                         port.wdata.eq(p.wdata.replicate(words))]
            answers[sel] = Array(port.rdata[WORD_BITS * i:WORD_BITS * (i + 1)]
                                 for i in range(words))[resp_word]
        with m.If(accept & ~p.we):
            m.d.sync += [resp.valid.eq(1), resp_sel.eq(p.sel), resp_word.eq(word)]
        with m.Elif(resp.ready):
            m.d.sync += resp.valid.eq(0)
        payload = 0
        for sel, value in answers.items():
            payload = Mux(resp_sel == sel, value, payload)
        m.d.comb += resp.payload.eq(payload)
        return m
