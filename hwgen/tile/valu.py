"""VALU: element-wise FP16 ops, exp/rcp/rsqrt helpers and the x<->v element moves.

Issue cycle t: operands captured (``vmv.s`` merges its element into the old vd here,
``vmv.x`` extracts its element); t+1: ``lanes_fp16`` copies of each arithmetic unit of
:mod:`hwgen.arith` compute and the op's result is registered; the result is then delayed
so that it is written at t + ``valu_latency`` - 1.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..arith import Fp16Add, Fp16Exp, Fp16Max, Fp16Mul, Fp16Rcp, Fp16Rsqrt
from ..isa import ValuOp
from ..library import place
from .issue import dispatch_layout
from .pipe import delay, pad_cycles
from .regfile import write_layout

__all__ = ["ValuUnit"]

#: Binary units and the ops they serve; unary units take operand a only.
_BINARY = ((Fp16Add, (ValuOp.ADD, ValuOp.SUB, ValuOp.ADDS)), (Fp16Mul, (ValuOp.MUL, ValuOp.MULS)),
           (Fp16Max, (ValuOp.MAX,)))
_UNARY = ((Fp16Exp, ValuOp.EXP), (Fp16Rcp, ValuOp.RCP), (Fp16Rsqrt, ValuOp.RSQRT))


class ValuUnit(wiring.Component):
    """Members: ``valu`` dispatch; ``va``/``vb``/``vd_old`` = v[rs1]/v[rs2]/v[rd];
    ``xs`` = x[rs1]; v write and x write (``vmv.x``) sources. With ``shared`` the
    arithmetic units are instances of :mod:`hwgen.library` modules."""

    def __init__(self, tile, pc_bits: int, *, shared: bool = False):
        self._t, self._shared = tile, shared
        super().__init__({"valu": In(dispatch_layout(pc_bits)), "va": In(tile.vlen),
                          "vb": In(tile.vlen), "vd_old": In(tile.vlen), "xs": In(32),
                          "clear": In(1),
                          "x_w": Out(write_layout(5, 32)),
                          "v_w": Out(write_layout(ceil_log2(tile.vregs), tile.vlen))})

    def elaborate(self, platform):
        m = Module()
        t, d = self._t, self.valu
        n = t.lanes_fp16
        op = d.d.op
        scalar = self.xs[:16]
        e = d.d.imm[:ceil_log2(n)]
        lanes_d = [self.vd_old[16 * i:16 * (i + 1)] for i in range(n)]
        merged = Cat(*(Mux(e == i, scalar, lane) for i, lane in enumerate(lanes_d)))
        extract = Array(self.va[16 * i:16 * (i + 1)] for i in range(n))[e]
        vs_op = (op == ValuOp.ADDS) | (op == ValuOp.MULS)
        a_in = Mux(vs_op, self.vb, Mux(op == ValuOp.MVS, merged,
                                       Mux(op == ValuOp.MVX, extract, self.va)))
        b_in = Mux(vs_op, scalar.replicate(n), self.vb)
        s1_op, s1_a, s1_b = Signal(4), Signal(t.vlen), Signal(t.vlen)
        m.d.sync += [s1_op.eq(op), s1_a.eq(a_in), s1_b.eq(b_in)]

        # t+1: every unit on every lane; pick the op's result
        result = s1_a                       # vmv.s / vmv.x pass their prepared value
        for unit, ops in _BINARY:
            outs = []
            for i in range(n):
                u = place(m, f"{unit.__name__.lower()}{i}", unit(), self._shared)
                m.d.comb += [u.a.eq(s1_a[16 * i:16 * (i + 1)]), u.b.eq(s1_b[16 * i:16 * (i + 1)])]
                if unit is Fp16Add:
                    m.d.comb += u.sub.eq(s1_op == ValuOp.SUB)
                outs.append(u.o)
            hit = 0
            for o in ops:
                hit = hit | (s1_op == o)
            result = Mux(hit, Cat(*outs), result)
        for unit, o in _UNARY:
            outs = []
            for i in range(n):
                u = place(m, f"{unit.__name__.lower()}{i}", unit(), self._shared)
                m.d.comb += u.a.eq(s1_a[16 * i:16 * (i + 1)])
                outs.append(u.o)
            result = Mux(s1_op == o, Cat(*outs), result)

        pad = pad_cycles("valu", "valu_latency", t.valu_latency, 2)
        out = delay(m, result, 1 + pad, "valu_out")
        wr_v = d.valid & d.d.wv
        wr_x = d.valid & d.d.wx & (d.d.rd != 0)
        k = 2 + pad
        m.d.comb += [self.v_w.en.eq(delay(m, wr_v, k, "valu_ven", clear=self.clear)),
                     self.v_w.addr.eq(delay(m, d.d.rd, k, "valu_vrd")),
                     self.v_w.data.eq(out),
                     self.x_w.en.eq(delay(m, wr_x, k, "valu_xen", clear=self.clear)),
                     self.x_w.addr.eq(delay(m, d.d.rd, k, "valu_xrd")),
                     self.x_w.data.eq(out[:16])]
        return m
