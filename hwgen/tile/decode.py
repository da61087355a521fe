"""Combinational instruction decoder, generated from the ISA table of :mod:`hwgen.isa`."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from ..isa import RegFile, Unit

__all__ = ["DECODED", "LAT_BITS", "Decoder"]

#: Bits of the latency field (latencies are small: reduce_latency is at most 8).
LAT_BITS = 5

DECODED = data.StructLayout({
    "legal": 1,          # a valid instruction (an illegal one halts like ecall)
    "unit": Unit,
    "op": 4,             # unit-level op (isa.AluOp, BranchOp, ... value)
    "b8": 1,             # .b variant (INT8 elements)
    "rd": 5, "rs1": 5, "rs2": 5,
    "imm": 32,           # sign-extended immediate / element index / shamt / CSR number
    "imm_b": 1,          # ALU operand b is imm (I, IS and U formats)
    "rx1": 1, "rx2": 1,  # reads x[rs1], x[rs2]
    "rv1": 1, "rv2": 1, "rvd": 1,   # reads v[rs1], v[rs2], v[rd]
    "ra2": 1,            # reads acc[rs2]
    "wx": 1, "wv": 1, "wa": 1,      # writes x[rd] / v[rd] / acc[rd]
    "accum": 1,          # in-place accumulate into acc[rd] (no same-acc stall)
    "dmem": 1,           # uses the DMEM port (one per cycle)
    "wptr": 1,           # uses the WMEM stream pointer (one per cycle)
    "lat": LAT_BITS,     # result latency of the destination
})

_READ_FLAGS = {(RegFile.X, "rs1"): "rx1", (RegFile.X, "rs2"): "rx2", (RegFile.V, "rs1"): "rv1",
               (RegFile.V, "rs2"): "rv2", (RegFile.V, "rd"): "rvd", (RegFile.A, "rs2"): "ra2"}
_WRITE_FLAGS = {RegFile.X: "wx", RegFile.V: "wv", RegFile.A: "wa"}


def _imm(fmt: str, w: Signal):
    """Immediate of format ``fmt`` as a 32-bit value (sign-extended where RISC-V does)."""
    sign = w[31].replicate
    if fmt == "I":
        return Cat(w[20:32], sign(20))
    if fmt == "S":
        return Cat(w[7:12], w[25:32], sign(20))
    if fmt == "B":
        return Cat(Const(0, 1), w[8:12], w[25:31], w[7], sign(20))
    if fmt == "U":
        return Cat(Const(0, 12), w[12:32])
    if fmt == "J":
        return Cat(Const(0, 1), w[21:31], w[20], w[12:20], sign(12))
    if fmt == "IS":
        return w[20:25]
    if fmt == "VE":
        return w[24:32]
    if fmt == "CSR":
        return w[20:32]
    return Const(0, 32)


class Decoder(wiring.Component):
    """``insn`` (32 bits) -> ``out`` (:data:`DECODED`); latencies come from ``tile``."""

    def __init__(self, tile):
        self._tile = tile
        super().__init__({"insn": In(32), "out": Out(DECODED)})

    def elaborate(self, platform):
        m = Module()
        w, o = self.insn, self.out
        fields: dict[str, list] = {}
        fmt_hits: dict[str, list] = {}
        legal = []
        for spec in isa.SPECS:
            mask, match = spec.mask_match()
            hit = Signal(name=f"is_{spec.name.replace('.', '_')}")
            ok = (w & mask) == match
            # register fields above the file size make the word illegal (as in isa.decode)
            for kind, field in spec.operands:
                limit = {"v": 3, "acc": 2}.get(kind)
                if limit is not None:
                    lsb, width = {"rd": (7, 5), "rs1": (15, 5), "rs2": (20, 5)}[field]
                    if spec.fmt == "VE" and field == "rs2":
                        lsb, width = 20, 4
                    ok &= w[lsb + limit:lsb + width] == 0
            m.d.comb += hit.eq(ok)
            legal.append(hit)
            fmt_hits.setdefault(spec.fmt, []).append(hit)
            consts = {"unit": spec.unit.value, "op": spec.op.value, "b8": spec.bwidth == 8,
                      "imm_b": spec.fmt in ("I", "IS", "U"), "accum": spec.accumulate,
                      "dmem": spec.dmem, "wptr": spec.wptr}
            for src in spec.srcs:
                consts[_READ_FLAGS[src]] = 1
            if spec.dst is not None:
                consts[_WRITE_FLAGS[spec.dst[0]]] = 1
                consts["lat"] = isa.latency(spec, self._tile)
            for name, value in consts.items():
                if value:
                    fields.setdefault(name, []).append(Mux(hit, int(value), 0))
        for name, terms in fields.items():
            acc = 0
            for t in terms:
                acc = acc | t
            m.d.comb += getattr(o, name).eq(acc)
        imm = 0
        is_ve = 0
        for fmt, hits in fmt_hits.items():
            any_hit = 0
            for h in hits:
                any_hit = any_hit | h
            imm = imm | Mux(any_hit, _imm(fmt, w), 0)
            if fmt == "VE":
                is_ve = any_hit
        any_legal = 0
        for h in legal:
            any_legal = any_legal | h
        m.d.comb += [o.legal.eq(any_legal), o.imm.eq(imm), o.rd.eq(w[7:12]),
                     o.rs1.eq(w[15:20]),
                     # VE keeps the top bit of the rs2 slot for the element index
                     o.rs2.eq(Mux(is_ve, w[20:24], w[20:25]))]
        return m
