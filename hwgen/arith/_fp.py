"""Shared pieces of the arithmetic units: format constants, leading-zero count, ROMs."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value

__all__ = [
    "F16_NAN", "F16_INF", "F32_NAN", "F32_INF",
    "leading_zeros", "rom", "zext", "add", "sub", "shift_left", "fp16_normalise", "fp32_word",
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


def zext(v: Value, width: int) -> Value:
    """Zero-extend ``v`` to ``width`` bits (``width >= len(v)``)."""
    if width < len(v):
        raise ValueError(f"cannot zero-extend a {len(v)}-bit value to {width} bits")
    return Cat(v, Const(0, width - len(v))) if width > len(v) else v


def add(width: int, *terms: Value | int) -> Value:
    """Sum of unsigned ``terms`` modulo 2**width.

    Exponent and fixed-point arithmetic here states its width instead of relying on
    Amaranth's growth rules (``a - b`` of unsigned values is signed and one bit wider).
    """
    total = None
    for term in terms:
        term = Const(term, width) if isinstance(term, int) else zext(term, width)
        total = term if total is None else (total + term)[:width]
    return total


def sub(width: int, a: Value | int, b: Value | int) -> Value:
    """``a - b`` of unsigned operands modulo 2**width."""
    a = Const(a, width) if isinstance(a, int) else zext(a, width)
    b = Const(b, width) if isinstance(b, int) else zext(b, width)
    return (a - b)[:width]


def shift_left(v: Value, amount: Value) -> Value:
    """``v << amount`` keeping ``len(v)`` bits: a log-depth mux stage per amount bit.

    Amaranth's variable ``<<`` widens its result to len(v) + 2**len(amount) - 1 bits
    (282 bits for a 27-bit value and an 8-bit amount); normalisers here only ever want
    the low bits, so the stages drop what falls off the top.
    """
    width = len(v)
    for i in range(len(amount)):
        step = 1 << i
        moved = Const(0, width) if step >= width else Cat(Const(0, step), v[:width - step])
        v = Mux(amount[i], moved, v)
    return v


def fp16_normalise(m: Module, bits: Value) -> tuple[Signal, Signal]:
    """(B, f) with FP16 ``bits`` = 1.f * 2**(B - 24); B unsigned in 0..39, f 10 bits.

    Subnormals are normalised with a leading-zero count (unbiased exponent down to -24,
    B = 0). The +24 offset keeps every later exponent computation unsigned. Meaningless
    for zero, infinity and NaN, which the callers handle separately.
    """
    exp, frac = bits[10:15], bits[:10]
    sig = Cat(frac, exp.any())
    lz = Signal(4)
    biased = Signal(6)
    f = Signal(10)
    m.d.comb += [
        lz.eq(leading_zeros(sig)),
        # E = max(exp, 1) - 15 - lz, so B = E + 24 = max(exp, 1) + 9 - lz.
        biased.eq(sub(6, add(6, Mux(exp.any(), exp, 1), 9), lz)),
        f.eq(shift_left(sig, lz)[:10]),
    ]
    return biased, f


def fp32_word(m: Module, sign: Value, exp_biased: Value, sig: Value,
              frac_bits: int) -> Signal:
    """FP32 bits of sign * sig/2**frac_bits * 2**(exp_biased - 127), sig in [2**fb, 2**(fb+1))."""
    word = Signal(32)
    m.d.comb += word.eq(Cat(Const(0, 23 - frac_bits), sig[:frac_bits], exp_biased[:8], sign))
    return word
