"""IEEE binary32 adder, round to nearest even (the VMAC accumulate and vred tree node)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._fp import F32_INF, F32_NAN, add, leading_zeros, shift_left, sub, zext

__all__ = ["Fp32Add"]


class Fp32Add(wiring.Component):
    """``a + b`` in IEEE binary32, round to nearest even (combinational).

    Full IEEE behaviour: subnormal inputs and outputs, exact cancellation gives +0
    (and -0 + -0 = -0), overflow gives a signed infinity, inf + finite = inf,
    inf - inf = NaN. Every NaN result is the canonical ``0x7FC00000``.

    Single-path design: order the operands by magnitude, align the smaller with guard,
    round and sticky bits, add or subtract 28 bits, normalise (one right shift on carry,
    or a leading-zero left shift limited to the exponent so results can be subnormal),
    round, and let the rounding carry ripple into the exponent field.

    Members
    -------
    a, b : In(unsigned(32))
        FP32 bits.
    o : Out(unsigned(32))
        FP32 bits of the rounded sum.
    """

    a: In(unsigned(32))
    b: In(unsigned(32))
    o: Out(unsigned(32))

    def elaborate(self, platform):
        m = Module()
        # x is the operand of larger magnitude (the encoding orders magnitudes), so the
        # significand difference below is never negative and the sign is x's.
        x = Signal(32)
        y = Signal(32)
        swap = self.b[:31] > self.a[:31]
        m.d.comb += [x.eq(Mux(swap, self.b, self.a)), y.eq(Mux(swap, self.a, self.b))]
        sx, ex = x[31], x[23:31]
        ey = y[23:31]
        exp_x = Mux(ex.any(), ex, 1)            # subnormals use exponent 1, hidden bit 0
        exp_y = Mux(ey.any(), ey, 1)
        subtract = x[31] ^ y[31]

        # 27-bit significands: 24 bits, then guard, round and a dedicated sticky bit.
        big = Cat(Const(0, 3), x[:23], ex.any())
        small = Cat(Const(0, 3), y[:23], ey.any())
        dist = Signal(5)                        # alignment shift, saturated at 27
        diff = sub(8, exp_x, exp_y)             # never negative: |x| >= |y|
        m.d.comb += dist.eq(Mux(diff > Const(27, 8), 27, diff))
        shifted = Signal(27)
        lost = Signal()
        m.d.comb += [
            shifted.eq(small >> dist),
            lost.eq((small & ~shift_left(Const((1 << 27) - 1, 27), dist)).any()),
        ]
        aligned = Cat(shifted[0] | lost, shifted[1:])

        total = Signal(28)
        m.d.comb += total.eq(Mux(subtract, big - aligned, big + aligned))

        # Normalise to the leading one at bit 26 with the exponent of that position.
        lz = Signal(5)
        left = Signal(5)
        norm = Signal(27)
        exp_n = Signal(9)
        m.d.comb += lz.eq(leading_zeros(total[:27]))
        with m.If(total[27]):
            m.d.comb += [norm.eq(Cat(total[0] | total[1], total[2:28])), exp_n.eq(add(9, exp_x, 1))]
        with m.Else():
            # Stop at exponent 1: what is left unnormalised is a subnormal (hidden bit 0).
            m.d.comb += [
                left.eq(Mux(zext(lz, 8) < exp_x, lz, sub(8, exp_x, 1))),
                norm.eq(shift_left(total[:27], left)),
                exp_n.eq(sub(9, exp_x, left)),
            ]

        sig = norm[3:27]
        guard = norm[2]
        sticky = norm[1] | norm[0]
        round_up = guard & (sticky | sig[0])
        # (exponent - 1) above the 24-bit significand: the hidden bit completes the
        # exponent field, and a carry out of rounding moves into it (up to infinity).
        packed = Signal(33)
        m.d.comb += packed.eq(add(33, Cat(Const(0, 23), sub(9, exp_n, 1)), sig, round_up))

        x_special = ex == 0xFF                  # the larger operand is inf or NaN
        any_nan = (((self.a[23:31] == 0xFF) & self.a[:23].any())
                   | ((self.b[23:31] == 0xFF) & self.b[:23].any()))
        inf_minus_inf = x_special & (ey == 0xFF) & subtract
        out = Signal(32)
        with m.If(any_nan | inf_minus_inf):
            m.d.comb += out.eq(F32_NAN)
        with m.Elif(x_special):
            m.d.comb += out.eq(x)
        with m.Elif(packed >= Const(F32_INF, 33)):
            m.d.comb += out.eq(Cat(Const(F32_INF, 31), sx))
        with m.Elif(~total.any()):
            # Exact zero: +0 under round-to-nearest unless both operands are -0.
            m.d.comb += out.eq(Cat(Const(0, 31), sx & ~subtract))
        with m.Else():
            m.d.comb += out.eq(Cat(packed[:31], sx))
        m.d.comb += self.o.eq(out)
        return m
