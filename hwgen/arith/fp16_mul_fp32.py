"""FP16 x FP16 -> FP32 exact multiplier (the VMAC product)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._fp import F32_NAN, add, leading_zeros, shift_left, sub

__all__ = ["Fp16MulFp32"]


class Fp16MulFp32(wiring.Component):
    """Exact product of two IEEE binary16 numbers as a binary32 (combinational).

    The 11 x 11-bit significand product has at most 22 bits and its exponent lies in
    [-48, 31], so every product, subnormal inputs included, is a normal FP32 number
    and no rounding happens. Zeros carry the XOR of the signs; inf * finite nonzero is
    a signed infinity; inf * 0 and NaN operands give ``0x7FC00000``.

    Members
    -------
    a, b : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(32))
        FP32 bits of ``a * b``.
    """

    a: In(unsigned(16))
    b: In(unsigned(16))
    o: Out(unsigned(32))

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        ea, eb = a[10:15], b[10:15]
        sign = a[15] ^ b[15]
        sig_a = Cat(a[:10], ea.any())
        sig_b = Cat(b[:10], eb.any())
        exp_a = Mux(ea.any(), ea, 1)
        exp_b = Mux(eb.any(), eb, 1)

        # a * b = p * 2**(Ea + Eb - 50); with the leading one of p at bit 21 - lz the
        # FP32 biased exponent is Ea + Eb - 29 - lz + 127 = Ea + Eb + 98 - lz (79..158).
        prod = Signal(22)
        lz = Signal(5)
        norm = Signal(22)
        m.d.comb += [
            prod.eq(sig_a * sig_b),
            lz.eq(leading_zeros(prod)),
            norm.eq(shift_left(prod, lz)),
        ]
        exp = sub(8, add(8, exp_a, exp_b, 98), lz)

        a_nan = (ea == 31) & a[:10].any()
        b_nan = (eb == 31) & b[:10].any()
        a_inf = (ea == 31) & ~a[:10].any()
        b_inf = (eb == 31) & ~b[:10].any()
        a_zero = ~a[:15].any()
        b_zero = ~b[:15].any()

        out = Signal(32)
        with m.If(a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)):
            m.d.comb += out.eq(F32_NAN)
        with m.Elif(a_inf | b_inf):
            m.d.comb += out.eq(Cat(Const(0, 23), Const(0xFF, 8), sign))
        with m.Elif(a_zero | b_zero):
            m.d.comb += out.eq(Cat(Const(0, 31), sign))
        with m.Else():
            m.d.comb += out.eq(Cat(Const(0, 2), norm[:21], exp, sign))
        m.d.comb += self.o.eq(out)
        return m
