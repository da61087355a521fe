"""INT8 x INT8 + INT32 multiply-accumulate (wrapping)."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Int8Mac"]


class Int8Mac(wiring.Component):
    """``acc + a * b`` with signed 8-bit operands and a wrapping signed 32-bit accumulator.

    Members
    -------
    acc : In(signed(32))
        Accumulator.
    a, b : In(signed(8))
        Operands.
    o : Out(signed(32))
        ``(acc + a * b) mod 2**32`` as two's complement.
    """

    acc: In(signed(32))
    a: In(signed(8))
    b: In(signed(8))
    o: Out(signed(32))

    def elaborate(self, platform):
        m = Module()
        product = Signal(signed(32))         # explicit width: both add operands 32 bits
        m.d.comb += [
            product.eq(self.a * self.b),
            self.o.eq((self.acc + product)[:32]),
        ]
        return m
