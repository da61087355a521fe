"""FP16 natural exponential approximation (range reduction to 2**f, table + interpolation)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import tables as t
from ._fp import F16_INF, F16_NAN, add, fp32_word, rom, sub
from .fp32_to_fp16 import Fp32ToFp16

__all__ = ["Fp16Exp"]

_F = t.EXP_Y_FRAC_BITS
_SEG = _F - t.INDEX_BITS                 # bits of f below the table index
_MAX_E = t.EXP_MAX_EXP_FIELD - 1         # largest exponent field on the fixed-point path


class Fp16Exp(wiring.Component):
    """``e ** a`` for FP16 ``a`` (combinational approximation, error <= 0.54 ulp).

    Range reduction: y = a * log2(e) in fixed point (16 fractional bits; the 11-bit
    significand times an 18-fractional-bit constant, shifted by the exponent and
    rounded), y = n + f with n = floor(y); 2**f comes from a 64-segment table with linear
    interpolation (13 x 10-bit multiply) and n becomes the exponent, then
    :class:`Fp32ToFp16` rounds (RNE, subnormal results down to 2**-24). Results:
    exp(+-0) = 1 exactly; a > 11.09 -> +inf; a < -17.33 -> +0 (so |a| >= 32 takes a
    short cut); exp(+inf) = +inf, exp(-inf) = +0, NaN -> ``0x7E00``. Golden:
    ``golden.vexp_h``.

    Members
    -------
    a : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(16))
        FP16 bits of the approximate exponential.
    """

    a: In(unsigned(16))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        sign, exp, frac = self.a[15], self.a[10:15], self.a[:10]
        sig = Cat(frac, exp.any())
        # |a| = sig * 2**(E - 25); |y| * 2**F = sig * L * 2**(E - 25 + F - FL), rounded:
        # shift right by (25 + FL - F - E) - 1, add one, drop the last bit.
        e_path = Signal(5)
        shift = Signal(5)
        prod = Signal(11 + t.EXP_LOG2E.bit_length())
        y_mag = Signal(_F + 7)
        m.d.comb += [
            e_path.eq(Mux(~exp.any(), 1, Mux(exp > Const(_MAX_E, 5), _MAX_E, exp))),
            shift.eq(sub(5, 24 + t.EXP_LOG2E_FRAC_BITS - _F, e_path)),
            prod.eq(sig * t.EXP_LOG2E),
            y_mag.eq(add(len(prod), prod >> shift, 1) >> 1),
        ]
        y = Signal(signed(_F + 8))
        m.d.comb += y.eq(Mux(sign, sub(len(y), 0, y_mag), y_mag))
        n = y[_F:].as_signed()                           # floor(y); f = y - n in [0, 1)
        seg = y[_SEG:_F]
        base = rom(t.EXP2_BASE, seg)
        diff = rom(t.EXP2_DIFF, seg)
        pow2 = Signal(t.TABLE_FRAC_BITS + 1)             # 2**f in [1, 2), scaled
        corr = add(len(diff) + _SEG, diff * y[:_SEG], 1 << (_SEG - 1))[_SEG:]
        m.d.comb += pow2.eq(add(len(pow2), base, corr))

        exp_b = Signal(8)
        m.d.comb += exp_b.eq(add(8, n.as_unsigned(), 127))   # n + 127 modulo 256
        m.submodules.narrow = narrow = Fp32ToFp16()
        m.d.comb += narrow.a.eq(fp32_word(m, Const(0, 1), exp_b, pow2, t.TABLE_FRAC_BITS))

        out = Signal(16)
        with m.If((exp == 31) & frac.any()):
            m.d.comb += out.eq(F16_NAN)
        with m.Elif(exp >= t.EXP_MAX_EXP_FIELD):
            m.d.comb += out.eq(Mux(sign, 0, F16_INF))
        with m.Else():
            m.d.comb += out.eq(narrow.o)
        m.d.comb += self.o.eq(out)
        return m
