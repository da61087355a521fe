"""FP16 x FP16 + FP32 multiply-accumulate (one VMAC lane step, single rounding)."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .fp16_mul_fp32 import Fp16MulFp32
from .fp32_add import Fp32Add

__all__ = ["Fp16MacFp32"]


class Fp16MacFp32(wiring.Component):
    """``acc + a * b`` with FP16 ``a``, ``b`` and an FP32 accumulator (combinational).

    The product is exact in FP32 (:class:`Fp16MulFp32`), so the only rounding is the
    :class:`Fp32Add` of the accumulate: ``fp32(fp32(a) * fp32(b) + acc)``, as the tile
    contract specifies. A pipelined VMAC instantiates the two halves separately and puts
    its registers between them; this composite is the reference for that split.

    Members
    -------
    acc : In(unsigned(32))
        FP32 accumulator bits.
    a, b : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(32))
        FP32 bits of the new accumulator value.
    """

    acc: In(unsigned(32))
    a: In(unsigned(16))
    b: In(unsigned(16))
    o: Out(unsigned(32))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Fp16MulFp32()
        m.submodules.add = add = Fp32Add()
        m.d.comb += [
            mul.a.eq(self.a),
            mul.b.eq(self.b),
            add.a.eq(self.acc),
            add.b.eq(mul.o),
            self.o.eq(add.o),
        ]
        return m
