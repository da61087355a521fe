"""Element-wise FP16 add/sub, multiply and maximum (computed in FP32, rounded once)."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._fp import F16_INF, F16_NAN
from .fp16_mul_fp32 import Fp16MulFp32
from .fp16_to_fp32 import Fp16ToFp32
from .fp32_add import Fp32Add
from .fp32_to_fp16 import Fp32ToFp16

__all__ = ["Fp16Add", "Fp16Mul", "Fp16Max"]


class Fp16Add(wiring.Component):
    """``a + b`` (``sub`` = 0) or ``a - b`` (``sub`` = 1) of FP16 numbers (combinational).

    Both operands widen exactly to FP32, :class:`Fp32Add` rounds the sum to FP32 and
    :class:`Fp32ToFp16` rounds it to FP16. Binary32 has 24 >= 2 * 11 + 2 significand
    bits, so this double rounding equals a single RNE rounding of the exact sum
    (Figueroa 1995, see the README). ``vadd.hs`` is this unit with ``b`` broadcast.

    Members
    -------
    a, b : In(unsigned(16))
        FP16 bits.
    sub : In(1)
        1 to subtract ``b`` (its sign bit is flipped before the add).
    o : Out(unsigned(16))
        FP16 bits of the rounded result.
    """

    a: In(unsigned(16))
    b: In(unsigned(16))
    sub: In(1)
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        m.submodules.wide_a = wide_a = Fp16ToFp32()
        m.submodules.wide_b = wide_b = Fp16ToFp32()
        m.submodules.add = add = Fp32Add()
        m.submodules.narrow = narrow = Fp32ToFp16()
        m.d.comb += [
            wide_a.a.eq(self.a),
            wide_b.a.eq(Cat(self.b[:15], self.b[15] ^ self.sub)),
            add.a.eq(wide_a.o),
            add.b.eq(wide_b.o),
            narrow.a.eq(add.o),
            self.o.eq(narrow.o),
        ]
        return m


class Fp16Mul(wiring.Component):
    """``a * b`` of FP16 numbers: the exact FP32 product rounded once to FP16.

    ``vmul.hs`` (multiply by an FP16 scalar) is this unit with ``b`` broadcast.

    Members
    -------
    a, b : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(16))
        FP16 bits of the rounded product.
    """

    a: In(unsigned(16))
    b: In(unsigned(16))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Fp16MulFp32()
        m.submodules.narrow = narrow = Fp32ToFp16()
        m.d.comb += [
            mul.a.eq(self.a),
            mul.b.eq(self.b),
            narrow.a.eq(mul.o),
            self.o.eq(narrow.o),
        ]
        return m


class Fp16Max(wiring.Component):
    """IEEE 754-2019 ``maximumNumber(a, b)`` of FP16 numbers (combinational, exact).

    A NaN operand is ignored (the other operand is returned); both NaN gives the
    canonical ``0x7E00``; -0 counts as less than +0. The result is one of the operands'
    bit patterns, unchanged (subnormals included), so no rounding is involved.

    Members
    -------
    a, b : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(16))
        FP16 bits of the larger operand.
    """

    a: In(unsigned(16))
    b: In(unsigned(16))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        a_nan = a[:15] > F16_INF
        b_nan = b[:15] > F16_INF
        # Order-preserving unsigned keys: flip all bits of negatives, set the MSB of
        # positives (so -0 = 0x7FFF sorts just below +0 = 0x8000).
        key_a = Signal(16)
        key_b = Signal(16)
        m.d.comb += [
            key_a.eq(Mux(a[15], ~a, Cat(a[:15], 1))),
            key_b.eq(Mux(b[15], ~b, Cat(b[:15], 1))),
        ]
        pick_b = a_nan | (~b_nan & (key_b > key_a))
        m.d.comb += self.o.eq(Mux(a_nan & b_nan, F16_NAN, Mux(pick_b, b, a)))
        return m
