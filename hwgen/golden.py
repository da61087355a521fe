"""Bit-exact numpy golden model of the arithmetic units in :mod:`hwgen.arith`.

Every function takes and returns raw bit patterns (``uint16`` FP16, ``uint32`` FP32,
``int8`` / ``int32`` integers) as numpy arrays (scalars and lists are accepted and
broadcast). It is the reference of the tile instruction-set simulator and of the RTL
tests; ``tests/test_arith_rtl.py`` holds the RTL to it bit for bit.

Policy (``hwgen/arith/README.md``): full IEEE 754 binary16/binary32, round to nearest
even, subnormal inputs and outputs, signed zeros and infinities per IEEE; every NaN
result is the one canonical quiet NaN (``0x7E00`` FP16, ``0x7FC00000`` FP32). So the
FP32 operations are plain numpy float32 arithmetic followed by NaN canonicalisation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .arith import tables as _t

__all__ = [
    "F16_NAN", "F32_NAN",
    "fp16_bits", "fp16_values", "fp32_bits", "fp32_values",
    "fp16_to_fp32", "fp32_to_fp16", "fp16_mul_fp32", "fp32_add", "fp16_mac", "int8_mac",
    "vadd_h", "vsub_h", "vmul_h", "vmax_h", "vadd_hs", "vmul_hs",
    "vexp_h", "vrcp_h", "vrsqrt_h",
    "reduce_tree_fp32", "reduce_tree_int32", "int32_to_int8_sat",
]

F16_NAN = np.uint16(0x7E00)
F32_NAN = np.uint32(0x7FC0_0000)


def _u16(x: ArrayLike) -> NDArray[np.uint16]:
    return np.asarray(x, dtype=np.uint16)


def _u32(x: ArrayLike) -> NDArray[np.uint32]:
    return np.asarray(x, dtype=np.uint32)


def _canon16(v: NDArray[np.float16]) -> NDArray[np.uint16]:
    return np.where(np.isnan(v), F16_NAN, v.view(np.uint16)).astype(np.uint16)


def _canon32(v: NDArray[np.float32]) -> NDArray[np.uint32]:
    return np.where(np.isnan(v), F32_NAN, v.view(np.uint32)).astype(np.uint32)


# --- conversions between values and bit patterns (for callers and tests) ----------------
def fp16_bits(values: ArrayLike) -> NDArray[np.uint16]:
    """FP16 bit patterns of ``values`` (rounded to nearest even from float64)."""
    with np.errstate(all="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float16).view(np.uint16)


def fp16_values(bits: ArrayLike) -> NDArray[np.float16]:
    """The float16 values of FP16 bit patterns."""
    return _u16(bits).view(np.float16)


def fp32_bits(values: ArrayLike) -> NDArray[np.uint32]:
    """FP32 bit patterns of ``values`` (rounded to nearest even from float64)."""
    with np.errstate(all="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32).view(np.uint32)


def fp32_values(bits: ArrayLike) -> NDArray[np.float32]:
    """The float32 values of FP32 bit patterns."""
    return _u32(bits).view(np.float32)


# --- the MAC datapath -------------------------------------------------------------------
def fp16_to_fp32(h: ArrayLike) -> NDArray[np.uint32]:
    """``Fp16ToFp32``: exact widening; NaN becomes the canonical FP32 NaN."""
    with np.errstate(all="ignore"):     # widening a signalling NaN raises "invalid"
        return _canon32(_u16(h).view(np.float16).astype(np.float32))


def fp32_to_fp16(f: ArrayLike) -> NDArray[np.uint16]:
    """``Fp32ToFp16``: round to nearest even, overflow to inf, FP16 subnormals, NaN canonical."""
    with np.errstate(all="ignore"):
        return _canon16(_u32(f).view(np.float32).astype(np.float16))


def fp16_mul_fp32(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """``Fp16MulFp32``: the exact FP32 product of two FP16 numbers (inf * 0 = NaN)."""
    with np.errstate(all="ignore"):
        fa = _u16(a).view(np.float16).astype(np.float32)
        fb = _u16(b).view(np.float16).astype(np.float32)
        return _canon32(fa * fb)


def fp32_add(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """``Fp32Add``: IEEE binary32 addition, round to nearest even, NaN canonical."""
    with np.errstate(all="ignore"):
        return _canon32(_u32(a).view(np.float32) + _u32(b).view(np.float32))


def fp16_mac(acc: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.uint32]:
    """One FP16 VMAC step ``acc + a * b`` in FP32 with a single rounding (``Fp16MacFp32``)."""
    return fp32_add(acc, fp16_mul_fp32(a, b))


def int8_mac(acc: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.int32]:
    """``Int8Mac``: ``acc + a * b`` with int8 operands and a wrapping int32 accumulator."""
    wide = (np.asarray(acc, dtype=np.int32).astype(np.int64)
            + np.asarray(a, dtype=np.int8).astype(np.int64)
            * np.asarray(b, dtype=np.int8).astype(np.int64))
    return ((wide + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


# --- element-wise FP16 (computed in FP32, rounded once) ------------------------------
def vadd_h(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Add`` (sub=0): fp16(fp32(a) + fp32(b))."""
    return fp32_to_fp16(fp32_add(fp16_to_fp32(a), fp16_to_fp32(b)))


def vsub_h(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Add`` (sub=1): fp16(fp32(a) - fp32(b)), i.e. a + (b with its sign flipped)."""
    return vadd_h(a, _u16(b) ^ np.uint16(0x8000))


def vmul_h(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Mul``: fp16(a * b) from the exact FP32 product (one rounding)."""
    return fp32_to_fp16(fp16_mul_fp32(a, b))


def vmax_h(a: ArrayLike, b: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Max``: IEEE 754-2019 maximumNumber: a NaN operand is ignored, -0 < +0.

    Both NaN gives the canonical NaN; otherwise the larger operand's bits, unchanged.
    """
    a16, b16 = np.broadcast_arrays(_u16(a), _u16(b))
    a_nan = (a16 & 0x7FFF) > 0x7C00
    b_nan = (b16 & 0x7FFF) > 0x7C00
    # Order-preserving key of sign-magnitude bits: negative values reversed below positives.
    ka = np.where(a16 >> 15 == 1, ~a16, a16 | 0x8000).astype(np.uint16)
    kb = np.where(b16 >> 15 == 1, ~b16, b16 | 0x8000).astype(np.uint16)
    pick_b = a_nan | (~b_nan & (kb > ka))
    out = np.where(pick_b, b16, a16)
    return np.where(a_nan & b_nan, F16_NAN, out).astype(np.uint16)


def vadd_hs(a: ArrayLike, scalar: ArrayLike) -> NDArray[np.uint16]:
    """``vadd.hs``: add one FP16 scalar to every element."""
    return vadd_h(a, scalar)


def vmul_hs(a: ArrayLike, scalar: ArrayLike) -> NDArray[np.uint16]:
    """``vmul.hs``: multiply every element by one FP16 scalar."""
    return vmul_h(a, scalar)


# --- non-linear helpers (mirror the fixed-point RTL step by step) ---------------------
_BIT_LENGTH_11 = np.array([int(i).bit_length() for i in range(2048)], dtype=np.int64)
_FRAC_MASK = (1 << _t.TABLE_FRAC_BITS) - 1
_SEG_SHIFT = 10 - _t.INDEX_BITS     # fraction bits of f below the table index


def _unpack16(h: ArrayLike) -> tuple[NDArray[np.int64], ...]:
    x = _u16(h).astype(np.int64)
    return x >> 15, (x >> 10) & 31, x & 1023


def _normalise16(ex: NDArray[np.int64], mf: NDArray[np.int64]) -> tuple[NDArray[np.int64], ...]:
    """Unbiased exponent E and fraction f (10 bits) of x = 1.f * 2**E (x nonzero finite)."""
    sig = np.where(ex != 0, mf | 1024, mf)
    lz = 11 - _BIT_LENGTH_11[sig]
    return np.maximum(ex, 1) - 15 - lz, (sig << lz) & 1023


def _round_to_fp16(sign, exp_biased, sig) -> NDArray[np.uint16]:
    """Pack sign * sig/2**18 * 2**(exp_biased-127) (sig in [2**18, 2**19)) as FP32, then RNE."""
    word = (sign << 31) | (exp_biased << 23) | ((sig & _FRAC_MASK) << (23 - _t.TABLE_FRAC_BITS))
    return fp32_to_fp16(word.astype(np.uint32))


def vrcp_h(h: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Rcp``: 1/x; rcp(+-0) = +-inf, rcp(+-inf) = +-0, NaN -> NaN."""
    s, ex, mf = _unpack16(h)
    e, f = _normalise16(ex, mf)
    i, fr = f >> _SEG_SHIFT, f & ((1 << _SEG_SHIFT) - 1)
    base, diff = np.array(_t.RCP_BASE)[i], np.array(_t.RCP_DIFF)[i]
    r = base - ((diff * fr + (1 << (_SEG_SHIFT - 1))) >> _SEG_SHIFT)     # 1/m in (1/2, 1]
    one = f == 0
    out = _round_to_fp16(s, np.where(one, -e, -e - 1) + 127, np.where(one, r, r << 1))
    out = np.where(ex == 0, np.where(mf == 0, (s << 15) | 0x7C00, out), out)
    out = np.where(ex == 31, np.where(mf == 0, s << 15, F16_NAN), out)
    return out.astype(np.uint16)


def vrsqrt_h(h: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Rsqrt``: 1/sqrt(x); +-0 -> +-inf, +inf -> +0, x < 0 -> NaN, NaN -> NaN."""
    s, ex, mf = _unpack16(h)
    e, f = _normalise16(ex, mf)
    odd = e & 1
    half_e = (e - odd) >> 1                        # x = m' * 4**half_e, m' in [1, 4)
    i = (odd << _t.INDEX_BITS) | (f >> _SEG_SHIFT)
    fr = f & ((1 << _SEG_SHIFT) - 1)
    base, diff = np.array(_t.RSQRT_BASE)[i], np.array(_t.RSQRT_DIFF)[i]
    r = base - ((diff * fr + (1 << (_SEG_SHIFT - 1))) >> _SEG_SHIFT)     # in (1/2, 1]
    one = (f == 0) & (odd == 0)
    out = _round_to_fp16(np.zeros_like(s), np.where(one, -half_e, -half_e - 1) + 127,
                         np.where(one, r, r << 1))
    zero = (ex == 0) & (mf == 0)
    out = np.where(s == 1, F16_NAN, out)
    out = np.where(zero, (s << 15) | 0x7C00, out)
    out = np.where(ex == 31, np.where((mf == 0) & (s == 0), 0, F16_NAN), out)
    return out.astype(np.uint16)


def vexp_h(h: ArrayLike) -> NDArray[np.uint16]:
    """``Fp16Exp``: e**x; large x -> +inf, very negative x -> +0, exp(-inf) = +0."""
    s, ex, mf = _unpack16(h)
    sig = np.where(ex != 0, mf | 1024, mf)
    e = np.minimum(np.maximum(ex, 1), _t.EXP_MAX_EXP_FIELD - 1)
    # |x| = sig * 2**(e - 25); Y = round(|x| * log2(e) * 2**F).
    shift = 25 + _t.EXP_LOG2E_FRAC_BITS - _t.EXP_Y_FRAC_BITS - e
    y_mag = (((sig * _t.EXP_LOG2E) >> (shift - 1)) + 1) >> 1
    y = np.where(s == 1, -y_mag, y_mag)
    n = y >> _t.EXP_Y_FRAC_BITS                    # floor: y = n + f, f in [0, 1)
    f = y & ((1 << _t.EXP_Y_FRAC_BITS) - 1)
    seg = _t.EXP_Y_FRAC_BITS - _t.INDEX_BITS
    i, fr = f >> seg, f & ((1 << seg) - 1)
    base, diff = np.array(_t.EXP2_BASE)[i], np.array(_t.EXP2_DIFF)[i]
    g = base + ((diff * fr + (1 << (seg - 1))) >> seg)                      # 2**f in [1, 2)
    out = _round_to_fp16(np.zeros_like(s), n + 127, g)
    out = np.where(ex >= _t.EXP_MAX_EXP_FIELD, np.where(s == 1, 0, 0x7C00), out)
    out = np.where((ex == 31) & (mf != 0), F16_NAN, out)
    return out.astype(np.uint16)


# --- reductions and narrowing -----------------------------------------------------------
def _tree(lanes: NDArray, add) -> NDArray:
    level = [lanes[..., i] for i in range(lanes.shape[-1])]
    if not level:
        raise ValueError("reduction needs at least one lane, not 0")
    while len(level) > 1:
        nxt = [add(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def reduce_tree_fp32(lanes_bits: ArrayLike) -> NDArray[np.uint32]:
    """``vred.h``: sum of the FP32 lanes (last axis) by a balanced binary tree of Fp32Add.

    Level 1 adds lanes (0,1), (2,3), ...; each next level adds neighbouring partial sums
    in the same way (lane 0 side is operand ``a``). With an odd count at some level the
    last partial sum passes to the next level unchanged. Every add rounds (RNE).
    """
    return _tree(_u32(lanes_bits), fp32_add)


def reduce_tree_int32(lanes: ArrayLike) -> NDArray[np.int32]:
    """``vred.b``: wrapping int32 sum of the lanes (last axis), same tree as the FP32 one."""
    def add(a, b):
        return ((a.astype(np.int64) + b + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)
    return _tree(np.asarray(lanes, dtype=np.int32), add)


def int32_to_int8_sat(acc: ArrayLike, shift: ArrayLike) -> NDArray[np.int8]:
    """``Int32ToInt8Sat`` (``vcvt.b``): arithmetic shift right by ``shift`` (0..31), saturate to int8."""
    sh = np.asarray(shift, dtype=np.int64)
    if np.any((sh < 0) | (sh > 31)):
        raise ValueError("shift must be in 0..31")
    return np.clip(np.asarray(acc, dtype=np.int32).astype(np.int64) >> sh, -128, 127).astype(np.int8)
