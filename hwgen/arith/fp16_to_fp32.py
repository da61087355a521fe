"""FP16 -> FP32 widening (exact)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._fp import F32_NAN, add, leading_zeros, shift_left, sub

__all__ = ["Fp16ToFp32"]


class Fp16ToFp32(wiring.Component):
    """Exact conversion of an IEEE binary16 to binary32 (combinational).

    FP16 subnormals become normal FP32 numbers; zeros and infinities keep their sign;
    every NaN becomes the canonical FP32 NaN ``0x7FC00000``.

    Members
    -------
    a : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(32))
        FP32 bits of the same value.
    """

    a: In(unsigned(16))
    o: Out(unsigned(32))

    def elaborate(self, platform):
        m = Module()
        sign, exp, frac = self.a[15], self.a[10:15], self.a[:10]

        # Subnormal: value = frac * 2**-24 with the leading one at bit 9 - lz, so the
        # FP32 biased exponent is (9 - lz - 24) + 127 = 112 - lz.
        lz = Signal(4)
        norm = Signal(10)                       # fraction after the leading one
        m.d.comb += [
            lz.eq(leading_zeros(frac)),
            norm.eq(Cat(Const(0, 1), shift_left(frac, lz)[:9])),
        ]
        out = Signal(32)
        with m.If(exp == 31):
            m.d.comb += out.eq(Mux(frac.any(), F32_NAN, Cat(Const(0, 23), Const(0xFF, 8), sign)))
        with m.Elif(exp.any()):
            m.d.comb += out.eq(Cat(Const(0, 13), frac, add(8, exp, 112), sign))
        with m.Elif(frac.any()):
            m.d.comb += out.eq(Cat(Const(0, 13), norm, sub(8, 112, lz), sign))
        with m.Else():
            m.d.comb += out.eq(Cat(Const(0, 31), sign))
        m.d.comb += self.o.eq(out)
        return m
