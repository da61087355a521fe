"""Flip-flop register file with combinational read ports and a limited number of write ports.

Several result sources (one per unit pipeline) can write in a cycle, but only
``n_ports`` write ports exist: the issue logic books a port for each write's cycle
(:mod:`hwgen.tile.scoreboard`), so at most ``n_ports`` sources are enabled at once and a
compaction network routes the k-th enabled source to port k.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["write_layout", "RegFile"]


def write_layout(addr_bits: int, width: int) -> data.StructLayout:
    return data.StructLayout({"en": 1, "addr": addr_bits, "data": width})


class RegFile(wiring.Component):
    """``n_regs`` registers of ``width`` bits (register 0 reads 0 when ``zero_reg``).

    Parameters
    ----------
    n_regs, width : int
        Geometry.
    n_read : int
        Read ports (``raddr[i]`` -> ``rdata[i]``, same cycle).
    n_src : int
        Write sources (``wsrc[i]``), each at most one write per cycle.
    n_ports : int
        Physical write ports; at most this many sources may write in one cycle.
    zero_reg : bool
        Register 0 is hard-wired to zero (RISC-V x0).
    """

    def __init__(self, n_regs: int, width: int, *, n_read: int, n_src: int, n_ports: int,
                 zero_reg: bool = False):
        self.n_regs, self.width, self.n_ports, self.zero_reg = n_regs, width, n_ports, zero_reg
        ab = ceil_log2(n_regs)
        super().__init__({"raddr": In(data.ArrayLayout(ab, n_read)),
                          "rdata": Out(data.ArrayLayout(width, n_read)),
                          "wsrc": In(data.ArrayLayout(write_layout(ab, width), n_src))})
        first = 1 if zero_reg else 0
        #: The architectural registers (tests read them directly).
        self.regs = [Signal(width, name=f"r{i}") for i in range(first, n_regs)]
        if zero_reg:
            self.regs.insert(0, None)

    def elaborate(self, platform):
        m = Module()
        srcs = list(self.wsrc)
        if len(srcs) <= self.n_ports:
            ports = [(s.en, s.addr, s.data) for s in srcs]
        else:
            ports = []
            prefix = [0]
            for s in srcs[:-1]:
                prefix.append(prefix[-1] + s.en)
            for p in range(self.n_ports):
                en = addr = dat = 0
                for s, before in zip(srcs, prefix, strict=True):
                    hit = s.en & (before == p)
                    en = en | hit
                    addr = addr | Mux(hit, s.addr, 0)
                    dat = dat | Mux(hit, s.data, 0)
                ports.append((en, addr, dat))
        for i, reg in enumerate(self.regs):
            if reg is None:
                continue
            for en, addr, dat in ports:
                with m.If(en & (addr == i)):
                    m.d.sync += reg.eq(dat)
        table = Array([0 if r is None else r for r in self.regs])
        for addr, out in zip(self.raddr, self.rdata, strict=True):
            m.d.comb += out.eq(table[addr])
        return m
