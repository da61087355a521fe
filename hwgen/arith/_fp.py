"""Shared pieces of the arithmetic units: format constants, leading-zero count, ROMs."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed

__all__ = [
    "F16_NAN", "F16_INF", "F32_NAN", "F32_INF",
    "leading_zeros", "rom", "fp16_normalise", "fp32_word",
]

#: The one quiet NaN every unit returns (sign 0, quiet bit set, payload 0).
F16_NAN = 0x7E00
F32_NAN = 0x7FC0_0000
#: +infinity; OR in the sign bit for -infinity.
F16_INF = 0x7C00
F32_INF = 0x7F80_0000


def _lzc_pow2(x: Value) -> tuple[Value, Value]:
    """(all_zero, count) of a power-of-two-wide vector, as a log-depth tree."""
    if len(x) == 1:
        return ~x[0], Const(0, 0)
    half = len(x) // 2
    zero_hi, count_hi = _lzc_pow2(x[half:])
    zero_lo, count_lo = _lzc_pow2(x[:half])
    # When the upper half is all zero the count is half + count_lo, i.e. count_lo with
    # the next bit set (half is a power of two).
    count = Mux(zero_hi, Cat(count_lo, Const(1, 1)), Cat(count_hi, Const(0, 1)))
    return zero_hi & zero_lo, count


def leading_zeros(v: Value) -> Value:
    """Number of leading zeros of ``v`` (``len(v)`` when ``v`` is zero).

    The vector is padded at the LSB end with a single one followed by zeros up to a
    power of two, so the tree never counts past ``len(v)`` and needs no zero special case.
    """
    width = len(v)
    n = 1
    while n < width + 1:
        n *= 2
    pad = n - width
    padded = Cat(Const(1 << (pad - 1), pad), v)
    return _lzc_pow2(padded)[1]


def rom(values: Sequence[int], index: Value) -> Value:
    """Combinational look-up of a constant table (synthesises to a mux tree)."""
    width = max(1, max(int(v) for v in values).bit_length())
    if min(values) < 0:
        raise ValueError(f"rom values must be non-negative, not {min(values)}")
    return Array([Const(int(v), width) for v in values])[index]


def fp16_normalise(m: Module, bits: Value) -> tuple[Signal, Signal]:
    """Unbiased exponent E (signed) and fraction f (10 bits) with FP16 ``bits`` = 1.f * 2**E.

    Subnormals are normalised with a leading-zero count (E down to -24). Meaningless
    for zero, infinity and NaN, which the callers handle separately.
    """
    exp, frac = bits[10:15], bits[:10]
    sig = Cat(frac, exp.any())
    lz = Signal(4)
    e = Signal(signed(7))
    f = Signal(10)
    m.d.comb += [
        lz.eq(leading_zeros(sig)),
        e.eq(Mux(exp.any(), exp, 1) - 15 - lz),
        f.eq((sig << lz)[:10]),
    ]
    return e, f


def fp32_word(m: Module, sign: Value, exp_biased: Value, sig: Value,
              frac_bits: int) -> Signal:
    """FP32 bits of sign * sig/2**frac_bits * 2**(exp_biased - 127), sig in [2**fb, 2**(fb+1))."""
    word = Signal(32)
    m.d.comb += word.eq(Cat(Const(0, 23 - frac_bits), sig[:frac_bits], exp_biased[:8], sign))
    return word
