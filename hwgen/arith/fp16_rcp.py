"""FP16 reciprocal approximation (table + linear interpolation)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import tables as t
from ._fp import F16_INF, F16_NAN, add, fp16_normalise, fp32_word, rom, sub
from .fp32_to_fp16 import Fp32ToFp16

__all__ = ["Fp16Rcp"]

_SEG = 10 - t.INDEX_BITS        # bits of the fraction below the table index


class Fp16Rcp(wiring.Component):
    """``1 / a`` for FP16 ``a`` (combinational approximation, error <= 0.59 ulp).

    a = 1.f * 2**E: the top ``INDEX_BITS`` of f pick a segment of 1/m on [1, 2), the
    rest interpolate linearly between the segment's end points (a 64-entry base table,
    a 64-entry difference table and a 13 x 4-bit multiply), giving 1/m with 18
    fractional bits; :class:`Fp32ToFp16` then rounds it (RNE, subnormal results for
    |a| > 2**14, inf for |a| < 2**-16). Powers of two are exact. Specials: rcp(+-0) =
    +-inf, rcp(+-inf) = +-0, NaN -> ``0x7E00``. Golden model: ``golden.vrcp_h``.

    Members
    -------
    a : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(16))
        FP16 bits of the approximate reciprocal.
    """

    a: In(unsigned(16))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        sign, exp, frac = self.a[15], self.a[10:15], self.a[:10]
        biased, f = fp16_normalise(m, self.a)          # a = 1.f * 2**(biased - 24)
        seg = f[_SEG:]
        base = rom(t.RCP_BASE, seg)
        diff = rom(t.RCP_DIFF, seg)
        recip = Signal(t.TABLE_FRAC_BITS + 1)            # 1/m in (1/2, 1], scaled
        corr = add(len(diff) + _SEG, diff * f[:_SEG], 1 << (_SEG - 1))[_SEG:]
        m.d.comb += recip.eq(sub(len(recip), base, corr))

        one = ~f.any()                                   # m = 1: 1/m = 1 exactly
        sig = Signal(t.TABLE_FRAC_BITS + 1)
        exp_b = Signal(8)
        m.d.comb += [
            sig.eq(Mux(one, recip, recip << 1)),
            # 1/a = (1/m) * 2**-E: biased exponent 127 - E = 151 - biased, or one less
            # when 1/m < 1 is renormalised by the shift above.
            exp_b.eq(Mux(one, sub(8, 151, biased), sub(8, 150, biased))),
        ]
        m.submodules.narrow = narrow = Fp32ToFp16()
        m.d.comb += narrow.a.eq(fp32_word(m, sign, exp_b, sig, t.TABLE_FRAC_BITS))

        out = Signal(16)
        with m.If(exp == 31):
            m.d.comb += out.eq(Mux(frac.any(), F16_NAN, Cat(Const(0, 15), sign)))
        with m.Elif(~self.a[:15].any()):
            m.d.comb += out.eq(Cat(Const(F16_INF, 15), sign))
        with m.Else():
            m.d.comb += out.eq(narrow.o)
        m.d.comb += self.o.eq(out)
        return m
