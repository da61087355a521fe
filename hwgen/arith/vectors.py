"""Stimulus for the arithmetic units: directed corner cases and biased random operands."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FP16_CORNERS", "FP32_CORNERS", "INT8_CORNERS", "INT32_CORNERS",
    "pairs", "all_fp16", "fp16_random", "fp32_random", "fp32_near", "fp32_rounding_cases",
    "fp16_rounding_boundaries",
]

#: FP16 specials: +-0, smallest/largest subnormal, smallest normal, 1 and neighbours,
#: largest normal, +-inf, quiet/signalling/negative NaNs, and a few ordinary values.
FP16_CORNERS = np.array(sorted({
    s | v
    for s in (0x0000, 0x8000)
    for v in (0x0000, 0x0001, 0x0002, 0x03FF, 0x0400, 0x0401, 0x3BFF, 0x3C00, 0x3C01,
              0x4000, 0x3555, 0x7BFF, 0x7BFE, 0x7C00, 0x7E00, 0x7C01, 0x7FFF, 0x1400, 0x5A00)
}), dtype=np.uint16)

#: FP32 specials in the same spirit, plus values next to FP16's limits.
FP32_CORNERS = np.array(sorted({
    s | v
    for s in (0x0000_0000, 0x8000_0000)
    for v in (0x0000_0000, 0x0000_0001, 0x0000_0002, 0x007F_FFFF, 0x0080_0000, 0x0080_0001,
              0x3F7F_FFFF, 0x3F80_0000, 0x3F80_0001, 0x4000_0000, 0x7F7F_FFFF, 0x7F7F_FFFE,
              0x7F00_0000, 0x7F80_0000, 0x7FC0_0000, 0x7F80_0001, 0x7FFF_FFFF,
              0x477F_E000, 0x477F_EFFF, 0x477F_F000, 0x3380_0000, 0x3300_0000, 0x3300_0001,
              0x3880_0000, 0x387F_FFFF, 0x3400_0000)
}), dtype=np.uint32)

INT8_CORNERS = np.array([-128, -127, -1, 0, 1, 2, 127, 126, -64, 64], dtype=np.int8)
INT32_CORNERS = np.array([-(1 << 31), -(1 << 31) + 1, -1, 0, 1, (1 << 31) - 1,
                          (1 << 31) - 16129, -(1 << 31) + 16384, 1 << 20], dtype=np.int32)


def pairs(xs: NDArray, ys: NDArray) -> tuple[NDArray, NDArray]:
    """Every (x, y) combination as two arrays."""
    px, py = zip(*itertools.product(xs.tolist(), ys.tolist()), strict=True)
    return np.array(px, dtype=xs.dtype), np.array(py, dtype=ys.dtype)


def all_fp16() -> NDArray[np.uint16]:
    """All 65,536 FP16 bit patterns."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def fp16_random(rng: np.random.Generator, n: int) -> NDArray[np.uint16]:
    """Uniform random FP16 bit patterns (every exponent equally likely, NaNs included)."""
    return rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)


def fp32_random(rng: np.random.Generator, n: int) -> NDArray[np.uint32]:
    """Uniform random FP32 bit patterns."""
    return rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)


def fp32_near(rng: np.random.Generator, ref: NDArray[np.uint32],
              spread: int = 30) -> NDArray[np.uint32]:
    """Random FP32 numbers whose exponent is within ``spread`` of ``ref``'s (clamped to the
    finite range), random sign and fraction: the operands that exercise alignment,
    cancellation and rounding in an adder rather than one operand swamping the other."""
    ref = np.asarray(ref, dtype=np.uint32)
    n = ref.shape[0]
    # Exponent offset: 0 for 30 %, +-1 for 10 % (massive cancellation), else uniform.
    pick = rng.random(n)
    offset = np.where(pick < 0.3, 0, np.where(pick < 0.4, rng.choice([-1, 1], n),
                                              rng.integers(-spread, spread + 1, n)))
    exp = np.clip(((ref >> 23).astype(np.int64) & 0xFF) + offset, 0, 254)
    # Half the time keep ref's fraction with a few low bits changed (near-cancellation,
    # and with 1/64 probability exact cancellation when the signs differ).
    frac = rng.integers(0, 1 << 23, n, dtype=np.int64)
    close = rng.random(n) < 0.5
    frac = np.where(close, (ref.astype(np.int64) & 0x7FFFFF) ^ rng.integers(0, 64, n), frac)
    sign = rng.integers(0, 2, n, dtype=np.int64)
    return ((sign << 31) | (exp << 23) | frac).astype(np.uint32)


def fp32_rounding_cases() -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Directed FP32 add operand pairs: ties to even, near-ties, exact cancellation, carry
    out of rounding into the exponent, overflow to inf, and subnormal sums."""
    one, half_ulp = 0x3F80_0000, 0x3380_0000              # 1.0 and 2**-24 (half an ulp of 1)
    cases = [
        (one, half_ulp), (0x3F80_0001, half_ulp),          # tie -> even (down), tie -> even (up)
        (one, half_ulp + 1), (one, 0xB380_0000),           # just above the tie; 1 - 2**-24 exact
        (one, 0xB300_0000), (0x3F80_0000, 0x3400_0001),
        (0x3FFF_FFFF, 0x3400_0000),                        # rounds up into the next binade
        (0x7F7F_FFFF, 0x7F7F_FFFF), (0x7F7F_FFFF, 0x7380_0000), (0x7F7F_FFFF, 0x7300_0000),
        (0x4049_0FDB, 0xC049_0FDB), (0x8000_0000, 0x8000_0000), (0x0000_0000, 0x8000_0000),
        (0x0080_0000, 0x8000_0001), (0x007F_FFFF, 0x0000_0001), (0x0040_0000, 0x0040_0000),
        (0x0080_0001, 0x8080_0000), (0x7F80_0000, 0xFF80_0000), (0x7F80_0000, 0x7F80_0000),
        (0x7F80_0000, 0x7F7F_FFFF), (0xFF80_0000, 0x0000_0001), (0x3F80_0000, 0xBF7F_FFFF),
        (0x4B80_0000, 0xBF80_0001), (0x4B00_0000, 0x3F00_0000), (0x4B00_0001, 0x3F00_0000),
    ]
    a, b = (np.array(col, dtype=np.uint32) for col in zip(*cases, strict=True))
    # Both operand orders and both sign combinations.
    sign = np.uint32(0x8000_0000)
    return np.concatenate([a, b, a ^ sign, b ^ sign]), np.concatenate([b, a, b ^ sign, a ^ sign])


def fp16_rounding_boundaries() -> NDArray[np.uint32]:
    """FP32 values at and next to every midpoint between adjacent finite FP16 numbers
    (and the overflow threshold 65520), both signs: every tie and near-tie of FP32->FP16."""
    lo = np.arange(0, 0x7C00, dtype=np.uint32).astype(np.uint16)
    v_lo = lo.view(np.float16).astype(np.float64)
    v_hi = (lo + np.uint16(1)).view(np.float16).astype(np.float64)
    v_hi[-1] = 65536.0                                   # the next "binade" value past 65504
    mid = ((v_lo + v_hi) / 2).astype(np.float32).view(np.uint32)   # exact in FP32
    pos = np.concatenate([mid - 1, mid, mid + 1])
    return np.concatenate([pos, pos | np.uint32(0x8000_0000)])
