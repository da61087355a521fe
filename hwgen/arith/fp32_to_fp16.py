"""FP32 -> FP16 narrowing, round to nearest even."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._fp import F16_INF, F16_NAN, add, shift_left, sub

__all__ = ["Fp32ToFp16"]


class Fp32ToFp16(wiring.Component):
    """IEEE binary32 to binary16, round to nearest, ties to even (combinational).

    Overflow (|x| >= 65520, the RNE threshold) gives a signed infinity; small values
    round correctly into FP16 subnormals or to a signed zero; NaN gives ``0x7E00``.

    Members
    -------
    a : In(unsigned(32))
        FP32 bits.
    o : Out(unsigned(16))
        FP16 bits.
    """

    a: In(unsigned(32))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        sign, exp, frac = self.a[31], self.a[23:31], self.a[:23]
        sig = Cat(frac, exp.any())              # 24-bit significand, hidden bit at 23

        # FP16 biased exponent = exp - 112. Normal targets drop 13 bits below the guard
        # bit at 12; targets below the normal range (exp <= 112) shift further, putting
        # the guard at 125 - exp. From 24 up every bit lies below the guard position, so
        # 24 stands for all larger shifts.
        guard_pos = Signal(5)
        normal = exp >= Const(113, 8)
        with m.If(normal):
            m.d.comb += guard_pos.eq(12)
        with m.Elif(exp <= Const(101, 8)):
            m.d.comb += guard_pos.eq(24)
        with m.Else():
            m.d.comb += guard_pos.eq(sub(8, 125, exp))

        at_guard = Signal(12)                   # sig >> guard_pos: kept bits and guard
        kept = at_guard[1:]
        guard = at_guard[0]
        sticky = Signal()
        m.d.comb += [
            at_guard.eq(sig >> guard_pos),
            sticky.eq((sig & ~shift_left(Const(0xFF_FFFF, 24), guard_pos)).any()),
        ]
        round_up = guard & (sticky | kept[0])

        # Packing (biased exponent - 1) above a significand that still holds its hidden
        # bit adds the hidden bit into the exponent field; a subnormal (hidden bit 0,
        # exponent base 0) packs as-is, and a rounding carry moves into the exponent.
        base = Signal(8)
        m.d.comb += base.eq(Mux(normal, sub(8, exp, 113), 0))
        packed = Signal(19)
        m.d.comb += packed.eq(add(19, Cat(Const(0, 10), base), kept, round_up))

        out = Signal(16)
        with m.If((exp == 255) & frac.any()):
            m.d.comb += out.eq(F16_NAN)
        with m.Elif((exp == 255) | (packed >= Const(F16_INF, 19))):
            m.d.comb += out.eq(Cat(Const(F16_INF, 15), sign))
        with m.Else():
            m.d.comb += out.eq(Cat(packed[:15], sign))
        m.d.comb += self.o.eq(out)
        return m
