"""Fixed-point parameters and tables of the exp / reciprocal / rsqrt approximations.

One source for both the RTL (:mod:`hwgen.arith.fp16_exp` and friends) and the golden
model (:mod:`hwgen.golden`), so the two cannot drift apart. Every function is evaluated
by linear interpolation between table entries sampled at segment end points:

    r = BASE[i] +/- ((DIFF[i] * frac + half) >> frac_bits)

The table sizes and fixed-point widths below were chosen by exhaustive measurement over
all 65,536 FP16 inputs against float64 (``tests/test_arith_golden.py`` pins the bounds;
``hwgen/arith/README.md`` lists them): 64 segments per function keep every normal
result within 0.6 ulp of the exact value.
Table values are computed with 50-digit decimal arithmetic, so they do not depend on
the host's libm.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

__all__ = [
    "INDEX_BITS", "TABLE_FRAC_BITS",
    "EXP_Y_FRAC_BITS", "EXP_LOG2E_FRAC_BITS", "EXP_LOG2E", "EXP_MAX_EXP_FIELD",
    "RCP_BASE", "RCP_DIFF", "RSQRT_BASE", "RSQRT_DIFF", "EXP2_BASE", "EXP2_DIFF",
]

#: log2 of the number of interpolation segments per function (64 segments).
INDEX_BITS = 6
#: Fractional bits of the table values: results in [1, 2) (exp) or (0.5, 1] (rcp, rsqrt)
#: are held as integers scaled by 2**TABLE_FRAC_BITS, 8 bits beyond FP16's 10.
TABLE_FRAC_BITS = 18

#: exp: fractional bits of y = x * log2(e) (the 2**f interpolation argument).
EXP_Y_FRAC_BITS = 16
#: exp: fractional bits of the log2(e) constant.
EXP_LOG2E_FRAC_BITS = 18
#: exp: inputs with an FP16 exponent field at or above this (|x| >= 32) saturate to
#: +inf (x > 0) or +0 (x < 0); below it the fixed-point path covers |x| < 32.
EXP_MAX_EXP_FIELD = 20


def _round(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def _sample(fn, count: int) -> list[int]:
    """fn(t) * 2**TABLE_FRAC_BITS at t = i / count for i = 0 .. count (inclusive)."""
    with localcontext() as ctx:
        ctx.prec = 50
        scale = Decimal(2) ** TABLE_FRAC_BITS
        return [_round(fn(Decimal(i) / count) * scale) for i in range(count + 1)]


def _tables():
    n = 1 << INDEX_BITS
    with localcontext() as ctx:
        ctx.prec = 50
        two = Decimal(2)
        ln2 = two.ln()
        rcp = _sample(lambda t: 1 / (1 + t), n)                       # 1/m, m in [1, 2]
        rsq_even = _sample(lambda t: 1 / (1 + t).sqrt(), n)           # 1/sqrt(m)
        rsq_odd = _sample(lambda t: 1 / (2 * (1 + t)).sqrt(), n)      # 1/sqrt(2m)
        exp2 = _sample(lambda t: (t * ln2).exp(), n)                  # 2**t, t in [0, 1]
        log2e = _round((1 / ln2) * two ** EXP_LOG2E_FRAC_BITS)
    return rcp, rsq_even, rsq_odd, exp2, log2e


_RCP, _RSQ_EVEN, _RSQ_ODD, _EXP2, EXP_LOG2E = _tables()

#: Reciprocal on m = 1.f in [1, 2): 1/m ~ RCP_BASE[i] - ((RCP_DIFF[i] * frac + 8) >> 4),
#: i = f[9:4], frac = f[3:0]; RCP_BASE[0] = 2**18 exactly, so 1/2**k is exact.
RCP_BASE = tuple(_RCP[:-1])
RCP_DIFF = tuple(_RCP[i] - _RCP[i + 1] for i in range(len(_RCP) - 1))
#: Reciprocal square root on m' = m (even exponent, entries 0..63) or 2m (odd exponent,
#: entries 64..127): 1/sqrt(m') ~ BASE[i] - ((DIFF[i] * frac + 8) >> 4).
RSQRT_BASE = tuple(_RSQ_EVEN[:-1] + _RSQ_ODD[:-1])
RSQRT_DIFF = tuple([_RSQ_EVEN[i] - _RSQ_EVEN[i + 1] for i in range(len(_RSQ_EVEN) - 1)]
                   + [_RSQ_ODD[i] - _RSQ_ODD[i + 1] for i in range(len(_RSQ_ODD) - 1)])
#: 2**f on f in [0, 1): 2**f ~ EXP2_BASE[i] + ((EXP2_DIFF[i] * frac + 512) >> 10),
#: i = f[15:10], frac = f[9:0]; EXP2_BASE[0] = 2**18 exactly, so exp(0) = 1 exactly.
EXP2_BASE = tuple(_EXP2[:-1])
EXP2_DIFF = tuple(_EXP2[i + 1] - _EXP2[i] for i in range(len(_EXP2) - 1))
