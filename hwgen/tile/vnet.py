"""VNET: ``vsend`` through a two-entry tx FIFO, ``vrecv`` straight from the rx stream.

``tx.valid`` comes from the FIFO (a register), never from ``tx.ready``, as the stream
rules require; ``vsend`` may issue while the FIFO has room, so a network interface that
accepts a beat every cycle sustains one ``vsend`` per cycle. ``vrecv`` issues only with
``rx.valid`` and pops the beat in its issue cycle; the vector is written
``vnet_latency`` - 1 cycles later.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..isa import VnetOp
from .issue import dispatch_layout
from .pipe import delay, pad_cycles
from .regfile import write_layout
from .signature import tx_layout

__all__ = ["VnetUnit", "TX_FIFO_DEPTH"]

#: Entries of the tx FIFO (two keep vsend at one per cycle with a registered valid).
TX_FIFO_DEPTH = 2


class VnetUnit(wiring.Component):
    """tx FIFO + vrecv write source; ``tx_ok``/``tx_empty`` feed the issue logic."""

    def __init__(self, tile, pc_bits: int):
        self._t = tile
        super().__init__({
            "vnet": In(dispatch_layout(pc_bits)), "dest": In(32), "vs": In(tile.vlen),
            "clear": In(1),
            "tx": Out(stream.Signature(tx_layout(tile.vlen))),
            "rx": In(stream.Signature(tile.vlen)),
            "tx_ok": Out(1), "tx_empty": Out(1),
            "v_w": Out(write_layout(ceil_log2(tile.vregs), tile.vlen)),
        })

    def elaborate(self, platform):
        m = Module()
        t = self._t
        m.submodules.tx_fifo = fifo = SyncFIFO(width=16 + t.vlen, depth=TX_FIFO_DEPTH)
        d = self.vnet
        send = d.valid & (d.d.op == VnetOp.SEND)
        recv = d.valid & (d.d.op == VnetOp.RECV)
        m.d.comb += [fifo.w_en.eq(send), fifo.w_data.eq(Cat(self.dest[:16], self.vs)),
                     self.tx.valid.eq(fifo.r_rdy), self.tx.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.tx.ready),
                     self.tx_ok.eq(fifo.w_rdy), self.tx_empty.eq(fifo.level == 0),
                     self.rx.ready.eq(recv)]
        pad = pad_cycles("vrecv", "vnet_latency", t.vnet_latency, 0)
        m.d.comb += [self.v_w.en.eq(delay(m, recv, pad, "recv_en", clear=self.clear)),
                     self.v_w.addr.eq(delay(m, d.d.rd, pad, "recv_rd")),
                     self.v_w.data.eq(delay(m, self.rx.payload, pad, "recv_data"))]
        return m
