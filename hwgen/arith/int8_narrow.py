"""INT32 -> INT8 narrowing with an arithmetic right shift and saturation (vcvt.b)."""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Int32ToInt8Sat"]


class Int32ToInt8Sat(wiring.Component):
    """``sat8(a >> shift)``: arithmetic shift right (floor), then clamp to [-128, 127].

    Members
    -------
    a : In(signed(32))
        INT32 accumulator lane.
    shift : In(unsigned(5))
        Right shift, 0..31 (``rs1[4:0]`` of ``vcvt.b``).
    o : Out(signed(8))
        Saturated INT8 result.
    """

    a: In(signed(32))
    shift: In(unsigned(5))
    o: Out(signed(8))

    def elaborate(self, platform):
        m = Module()
        shifted = Signal(signed(32))
        m.d.comb += shifted.eq(self.a >> self.shift)     # >> of a signed value is arithmetic
        high = shifted > Const(127, signed(32))
        low = shifted < Const(-128, signed(32))
        m.d.comb += self.o.eq(Mux(high, 127, Mux(low, -128, shifted[:8])))
        return m
