"""Scalar LSU (lw/sw) and VLSU (vld/vst/vldw): lw/sw/vld/vst share the single DMEM port.

The issue logic lets at most one of them access DMEM per cycle. Addresses are byte
addresses: a row is ``dmem_port_bits`` / 8 bytes; lw/sw select a 32-bit word of the row
(little-endian: byte b of a row is bits 8b..8b+7), vld/vst move a whole row (the low
address bits are ignored; the ISS rejects misaligned addresses). A store writes DMEM in
its issue cycle; a load reads it in the issue cycle and writes its register
``load_latency`` - 1 cycles later (the synchronous read takes one). ``vldw`` takes the
WMEM row the VMAC unit reads for it (WMEM[wptr]) along the same path.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..isa import MemOp
from .issue import dispatch_layout
from .memories import WORD_BITS
from .pipe import delay, pad_cycles
from .regfile import write_layout

__all__ = ["RowPort", "LoadStore"]


class RowPort(wiring.Signature):
    """Request side of a row-wide single-port memory (see :class:`BankedMemory`)."""

    def __init__(self, addr_bits: int, width: int):
        super().__init__({"ce": Out(1), "we": Out(width // WORD_BITS), "addr": Out(addr_bits),
                          "wdata": Out(width), "rdata": In(width)})


class LoadStore(wiring.Component):
    """lw/sw and vld/vst on DMEM; x and v register write sources for the loads."""

    def __init__(self, tile, pc_bits: int):
        self._t = tile
        self.row_bits = ceil_log2(tile.dmem_rows)
        disp = dispatch_layout(pc_bits)
        super().__init__({
            "lsu": In(disp), "lsu_a": In(32), "lsu_b": In(32),
            "vlsu": In(disp), "vlsu_a": In(32), "vlsu_v": In(tile.vlen),
            "wmem_rdata": In(tile.wmem_port_bits), "clear": In(1),
            "dmem": Out(RowPort(self.row_bits, tile.dmem_port_bits)),
            "x_w": Out(write_layout(5, 32)),
            "v_w": Out(write_layout(ceil_log2(tile.vregs), tile.vlen)),
        })

    def elaborate(self, platform):
        m = Module()
        t = self._t
        width = t.dmem_port_bits
        words = width // WORD_BITS
        low = ceil_log2(width // 8)          # byte-in-row bits
        lsu, vlsu = self.lsu, self.vlsu
        s_addr = (self.lsu_a + lsu.d.imm)[:32]
        v_addr = (self.vlsu_a + vlsu.d.imm)[:32]
        s_store = lsu.d.op == MemOp.STORE
        v_store = vlsu.d.op == MemOp.STORE
        word = s_addr[2:low]
        with m.If(lsu.valid):
            m.d.comb += [self.dmem.ce.eq(1), self.dmem.addr.eq(s_addr[low:]),
                         self.dmem.wdata.eq(self.lsu_b.replicate(words)),
                         self.dmem.we.eq(Mux(s_store, 1 << word, 0))]
        with m.Elif(vlsu.valid & vlsu.d.dmem):
            m.d.comb += [self.dmem.ce.eq(1), self.dmem.addr.eq(v_addr[low:]),
                         self.dmem.wdata.eq(self.vlsu_v),
                         self.dmem.we.eq(Mux(v_store, (1 << words) - 1, 0))]

        # loads: the row arrives one cycle after issue, then pad to load_latency
        pad = pad_cycles("load", "load_latency", t.load_latency, 1)
        s_load = Signal()
        v_load = Signal()
        s_rd = Signal(5)
        v_rd = Signal(len(self.v_w.addr))
        s_word = Signal(len(word))
        from_wmem = Signal()                 # vldw: the row comes from WMEM (read by VMAC)
        m.d.sync += [s_load.eq(lsu.valid & ~s_store & lsu.d.wx & (lsu.d.rd != 0) & ~self.clear),
                     v_load.eq(vlsu.valid & ~v_store & ~self.clear),
                     s_rd.eq(lsu.d.rd), v_rd.eq(vlsu.d.rd), s_word.eq(word),
                     from_wmem.eq(vlsu.d.op == MemOp.WLOAD)]
        row_words = Array(self.dmem.rdata[WORD_BITS * i:WORD_BITS * (i + 1)] for i in range(words))
        m.d.comb += [
            self.x_w.en.eq(delay(m, s_load, pad, "lw_en", clear=self.clear)),
            self.x_w.addr.eq(delay(m, s_rd, pad, "lw_rd")),
            self.x_w.data.eq(delay(m, row_words[s_word], pad, "lw_data")),
            self.v_w.en.eq(delay(m, v_load, pad, "vld_en", clear=self.clear)),
            self.v_w.addr.eq(delay(m, v_rd, pad, "vld_rd")),
            self.v_w.data.eq(delay(m, Mux(from_wmem, self.wmem_rdata, self.dmem.rdata), pad,
                                   "vld_data")),
        ]
        return m
