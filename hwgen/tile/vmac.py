"""VMAC unit: accumulators, the multiply-accumulate pipeline, vred tree, vcvt, WMEM stream.

* MAC ops (``vmacw vmacx vmacv``, ``vzero``), issued in cycle t: operands captured at
  the end of t (``vmacw`` reads WMEM row ``wptr`` in t, ``wptr`` += 1; the unit also
  reads the row for a ``vldw`` issued to the VLSU); products
  (``Fp16MulFp32``; INT8 operands pass) in t+1, padded to ``mac_latency``; the in-place
  accumulate (``Fp32Add`` / ``Int8Mac``) into the accumulator in t + mac_latency - 1.
  Back-to-back ops into the same accumulator therefore need no stall.
* ``vred``: the accumulator is read at issue and summed by the documented tree
  (:func:`hwgen.golden.reduce_tree_fp32`), one ``Fp32Add`` level per cycle, the INT32 tree
  doing its first two levels in the first cycle (it has twice the lanes).
* ``vcvt``: the accumulator is read and converted at issue, then delayed to ``mac_latency``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..arith import Fp16MulFp32, Fp32Add, Fp32ToFp16, Int8Mac, Int32ToInt8Sat
from ..isa import VmacOp
from ..library import place
from .issue import dispatch_layout
from .pipe import delay, pad_cycles
from .regfile import write_layout
from .vlsu import RowPort

__all__ = ["VmacUnit"]


def _lanes(value, width):
    return [value[i:i + width] for i in range(0, len(value), width)]


class VmacUnit(wiring.Component):
    """Members: ``vmac`` dispatch with ``va``/``vb`` = v[rs1]/v[rs2] and ``xs`` = x[rs1];
    ``wmem`` row port (absent without WMEM); x write (vred) and v write (vcvt).

    With ``shared`` the arithmetic units are instances of :mod:`hwgen.library` modules."""

    def __init__(self, tile, pc_bits: int, *, shared: bool = False):
        self._t, self._shared = tile, shared
        members = {"vmac": In(dispatch_layout(pc_bits)), "va": In(tile.vlen), "vb": In(tile.vlen),
                   "xs": In(32), "vldw": In(1), "clear": In(1),
                   "x_w": Out(write_layout(5, 32)),
                   "v_w": Out(write_layout(ceil_log2(tile.vregs), tile.vlen))}
        if tile.wmem_rows:
            members["wmem"] = Out(RowPort(max(1, ceil_log2(tile.wmem_rows)), tile.wmem_port_bits))
        super().__init__(members)
        #: The accumulators (tests read them directly).
        self.accs = [Signal(tile.acc_bits, name=f"acc{i}") for i in range(tile.accs)]

    def elaborate(self, platform):
        m = Module()
        self._mac_pipeline(m)
        acc_rd = Array(self.accs)[self.vmac.d.rs2[:2]]
        self._reduce(m, acc_rd)
        self._convert(m, acc_rd)
        return m

    def _mac_pipeline(self, m):
        t, d, vlen = self._t, self.vmac, self._t.vlen
        nh, nb = t.lanes_fp16, t.lanes_int8
        op = d.d.op
        mac = d.valid & ((op == VmacOp.MACW) | (op == VmacOp.MACX) | (op == VmacOp.MACV)
                         | (op == VmacOp.ZERO))
        # issue cycle: element broadcast, WMEM read, wptr
        e_h = Array(_lanes(self.vb, 16))[d.d.imm[:ceil_log2(nh)]]
        e_b = Array(_lanes(self.vb, 8))[d.d.imm[:ceil_log2(nb)]]
        bcast = Mux(d.d.b8, e_b.replicate(nb), e_h.replicate(nh))
        s1 = {"valid": Signal(), "op": Signal(4), "b8": Signal(), "acc": Signal(2),
              "a": Signal(vlen), "b": Signal(vlen), "w": Signal()}
        m.d.sync += [s1["valid"].eq(mac & ~self.clear), s1["op"].eq(op), s1["b8"].eq(d.d.b8),
                     s1["acc"].eq(d.d.rd[:2]), s1["a"].eq(self.va),
                     s1["b"].eq(Mux(op == VmacOp.MACV, self.vb, bcast)),
                     s1["w"].eq(op == VmacOp.MACW)]
        a = s1["a"]
        if t.wmem_rows:
            wptr = Signal(len(self.wmem.addr))
            with m.If(d.valid & (op == VmacOp.WSET)):
                m.d.sync += wptr.eq(self.xs)
            # vmacw and vldw (issued to VLSU) stream rows; the issue logic allows one
            # stream-pointer op (wset/vmacw/vldw) per cycle
            stream = (d.valid & (op == VmacOp.MACW)) | self.vldw
            with m.Elif(stream):
                m.d.sync += wptr.eq(wptr + 1)
            with m.If(self.clear):
                m.d.sync += wptr.eq(0)
            m.d.comb += [self.wmem.ce.eq(stream), self.wmem.addr.eq(wptr)]
            a = Mux(s1["w"], self.wmem.rdata, s1["a"])
            self.wptr = wptr
        # t+1: FP16 products (exact in FP32)
        prods = []
        for i, (x, y) in enumerate(zip(_lanes(a, 16), _lanes(s1["b"], 16), strict=True)):
            mul = place(m, f"mul{i}", Fp16MulFp32(), self._shared)
            m.d.comb += [mul.a.eq(x), mul.b.eq(y)]
            prods.append(mul.o)
        pad = pad_cycles("vmac", "mac_latency", t.mac_latency, 2)
        s2 = {}
        for name, value in (("valid", s1["valid"]), ("op", s1["op"]), ("b8", s1["b8"]),
                            ("acc", s1["acc"]), ("a", a), ("b", s1["b"]), ("p", Cat(*prods))):
            s2[name] = delay(m, value, 1 + pad, f"s2_{name}",
                             clear=self.clear if name == "valid" else None)
        # t + mac_latency - 1: accumulate in place
        acc = Array(self.accs)[s2["acc"]]
        new_h = []
        for i, (old, p) in enumerate(zip(_lanes(acc, 32)[:nh], _lanes(s2["p"], 32), strict=True)):
            add = place(m, f"add{i}", Fp32Add(), self._shared)
            m.d.comb += [add.a.eq(old), add.b.eq(p)]
            new_h.append(add.o)
        new_h = Cat(*new_h, acc[32 * nh:])
        new_b = []
        lanes = zip(_lanes(acc, 32), _lanes(s2["a"], 8), _lanes(s2["b"], 8), strict=True)
        for i, (old, x, y) in enumerate(lanes):
            imac = place(m, f"imac{i}", Int8Mac(), self._shared)
            m.d.comb += [imac.acc.eq(old), imac.a.eq(x), imac.b.eq(y)]
            new_b.append(imac.o)
        new = Mux(s2["op"] == VmacOp.ZERO, 0, Mux(s2["b8"], Cat(*new_b), new_h))
        for i, reg in enumerate(self.accs):
            with m.If(s2["valid"] & (s2["acc"] == i)):
                m.d.sync += reg.eq(new)

    def _reduce(self, m, acc_rd):
        t, d = self._t, self.vmac
        nh = t.lanes_fp16
        levels = ceil_log2(nh)
        go = d.valid & (d.d.op == VmacOp.RED)
        fp = _lanes(acc_rd, 32)[:nh]
        ints = [(x + y)[:32] for x, y in zip(*[iter(_lanes(acc_rd, 32))] * 2, strict=True)]
        n_add = 0
        for level in range(levels):
            nxt_fp, nxt_int = [], []
            for k in range(0, len(fp) - 1, 2):
                add = place(m, f"red{n_add}", Fp32Add(), self._shared)
                n_add += 1
                m.d.comb += [add.a.eq(fp[k]), add.b.eq(fp[k + 1])]
                nxt_fp.append(add.o)
                nxt_int.append((ints[k] + ints[k + 1])[:32])
            if len(fp) % 2:
                nxt_fp.append(fp[-1])
                nxt_int.append(ints[-1])
            fp = [delay(m, v, 1, f"red_l{level}_f{k}") for k, v in enumerate(nxt_fp)]
            ints = [delay(m, v, 1, f"red_l{level}_i{k}") for k, v in enumerate(nxt_int)]
        pad = pad_cycles("vred", "reduce_latency", t.reduce_latency, levels)
        b8 = delay(m, d.d.b8, levels, "red_b8")
        en = delay(m, go & d.d.wx & (d.d.rd != 0), levels + pad, "red_en", clear=self.clear)
        m.d.comb += [self.x_w.en.eq(en), self.x_w.addr.eq(delay(m, d.d.rd, levels + pad, "red_rd")),
                     self.x_w.data.eq(delay(m, Mux(b8, ints[0], fp[0]), pad, "red_out"))]

    def _convert(self, m, acc_rd):
        t, d = self._t, self.vmac
        go = d.valid & (d.d.op == VmacOp.CVT)
        halves, bytes_ = [], []
        for i, lane in enumerate(_lanes(acc_rd, 32)):
            if i < t.lanes_fp16:
                c = place(m, f"cvth{i}", Fp32ToFp16(), self._shared)
                m.d.comb += c.a.eq(lane)
                halves.append(c.o)
            s = place(m, f"cvtb{i}", Int32ToInt8Sat(), self._shared)
            m.d.comb += [s.a.eq(lane), s.shift.eq(self.xs[:5])]
            bytes_.append(s.o)
        out = Mux(d.d.b8, Cat(*bytes_), Cat(*halves))
        n = 1 + pad_cycles("vcvt", "mac_latency", t.mac_latency, 1)
        m.d.comb += [self.v_w.en.eq(delay(m, go, n, "cvt_en", clear=self.clear)),
                     self.v_w.addr.eq(delay(m, d.d.rd, n, "cvt_rd")),
                     self.v_w.data.eq(delay(m, out, n, "cvt_out"))]
