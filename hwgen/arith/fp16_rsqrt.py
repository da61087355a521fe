"""FP16 reciprocal square root approximation (table + linear interpolation)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import tables as t
from ._fp import F16_INF, F16_NAN, add, fp16_normalise, fp32_word, rom, sub
from .fp32_to_fp16 import Fp32ToFp16

__all__ = ["Fp16Rsqrt"]

_SEG = 10 - t.INDEX_BITS        # bits of the fraction below the table index


class Fp16Rsqrt(wiring.Component):
    """``1 / sqrt(a)`` for FP16 ``a`` (combinational approximation, error <= 0.53 ulp).

    a = m' * 4**k with m' = 1.f (even exponent) or 2 * 1.f (odd exponent): the exponent
    parity and the top ``INDEX_BITS`` of f pick one of 128 segments of 1/sqrt(m') on
    [1, 4), the rest interpolate linearly (12 x 4-bit multiply), and
    :class:`Fp32ToFp16` rounds the result (RNE). Every positive FP16 input, subnormals
    included, has a normal FP16 result. Specials: +-0 -> +-inf (IEEE rSqrt), +inf -> +0,
    any other negative input -> ``0x7E00``, NaN -> ``0x7E00``. Golden: ``golden.vrsqrt_h``.

    Members
    -------
    a : In(unsigned(16))
        FP16 bits.
    o : Out(unsigned(16))
        FP16 bits of the approximate reciprocal square root.
    """

    a: In(unsigned(16))
    o: Out(unsigned(16))

    def elaborate(self, platform):
        m = Module()
        sign, exp, frac = self.a[15], self.a[10:15], self.a[:10]
        biased, f = fp16_normalise(m, self.a)          # a = 1.f * 2**(biased - 24)
        odd = biased[0]                                  # parity of the exponent
        half = biased[1:]                                # a = m' * 4**(half - 12)
        seg = Cat(f[_SEG:], odd)
        base = rom(t.RSQRT_BASE, seg)
        diff = rom(t.RSQRT_DIFF, seg)
        root = Signal(t.TABLE_FRAC_BITS + 1)             # 1/sqrt(m') in (1/2, 1], scaled
        corr = add(len(diff) + _SEG, diff * f[:_SEG], 1 << (_SEG - 1))[_SEG:]
        m.d.comb += root.eq(sub(len(root), base, corr))

        one = ~f.any() & ~odd                            # m' = 1: exactly 1
        sig = Signal(t.TABLE_FRAC_BITS + 1)
        exp_b = Signal(8)
        m.d.comb += [
            sig.eq(Mux(one, root, root << 1)),
            # 1/sqrt(a) = (1/sqrt(m')) * 2**-(half - 12): biased exponent 139 - half,
            # or one less when 1/sqrt(m') < 1 is renormalised.
            exp_b.eq(Mux(one, sub(8, 139, half), sub(8, 138, half))),
        ]
        m.submodules.narrow = narrow = Fp32ToFp16()
        m.d.comb += narrow.a.eq(fp32_word(m, Const(0, 1), exp_b, sig, t.TABLE_FRAC_BITS))

        out = Signal(16)
        with m.If((exp == 31) & frac.any()):
            m.d.comb += out.eq(F16_NAN)
        with m.Elif(~self.a[:15].any()):
            m.d.comb += out.eq(Cat(Const(F16_INF, 15), sign))
        with m.Elif(sign):
            m.d.comb += out.eq(F16_NAN)
        with m.Elif(exp == 31):
            m.d.comb += out.eq(0)
        with m.Else():
            m.d.comb += out.eq(narrow.o)
        m.d.comb += self.o.eq(out)
        return m
