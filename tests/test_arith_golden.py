"""The golden arithmetic model (hwgen.golden) against float64 and exact references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hwgen import golden as g
from hwgen.arith import vectors as v

RNG_SEED = 20261125
H = v.all_fp16()
X16 = H.view(np.float16).astype(np.float64)          # every FP16 value (NaNs included)
POS_INF = np.inf


# --- independent references ----------------------------------------------------------------
def rne(x: np.ndarray, *, man_bits: int, emin: int, max_finite: float) -> np.ndarray:
    """Round float64 values to a binary format by RNE (np.rint is ties-to-even).

    ``x / ulp`` is exact for the dyadic inputs used here, so this is an exact rounding:
    ulp = 2**(max(floor(log2|x|), emin) - man_bits); overflow past the RNE threshold
    (max_finite + ulp/2) gives inf.
    """
    with np.errstate(all="ignore"):
        ulp = np.exp2(np.maximum(binade(x), emin) - man_bits)
        r = np.rint(x / ulp) * ulp
        r = np.where(x == 0, x, r)
        return np.where(np.abs(r) > max_finite, np.copysign(np.inf, x), r)


def rne16(x):
    return rne(x, man_bits=10, emin=-14, max_finite=65504.0)


def rne32(x):
    return rne(x, man_bits=23, emin=-126, max_finite=float(np.finfo(np.float32).max))


def binade(x: np.ndarray) -> np.ndarray:
    """floor(log2|x|), exactly (frexp, not a rounded log2)."""
    return np.frexp(x)[1] - 1


def ulp_error(result: np.ndarray, exact: np.ndarray, *, man_bits: int, emin: int) -> np.ndarray:
    """|result - exact| in ulps of the exact value's binade (subnormal ulp below emin)."""
    e = np.maximum(binade(exact), emin)
    return np.abs(result - exact) / np.exp2(e - man_bits)


def f16(bits):
    with np.errstate(invalid="ignore"):            # signalling NaNs raise "invalid"
        return g.fp16_values(bits).astype(np.float64)


def f32(bits):
    with np.errstate(invalid="ignore"):
        return g.fp32_values(bits).astype(np.float64)


def is_nan16(bits):
    return (np.asarray(bits) & 0x7FFF) > 0x7C00


# --- conversions ----------------------------------------------------------------------------
def test_fp16_to_fp32_is_exact_for_every_fp16():
    out = g.fp16_to_fp32(H)
    finite_or_inf = ~np.isnan(X16)
    assert np.array_equal(f32(out)[finite_or_inf], X16[finite_or_inf])
    # Signs of zeros and infinities survive; NaNs become the canonical one.
    assert np.array_equal(out[finite_or_inf] >> 31, H[finite_or_inf].astype(np.uint32) >> 15)
    assert np.all(out[np.isnan(X16)] == 0x7FC0_0000)


def test_fp32_to_fp16_rounds_to_nearest_even():
    rng = np.random.default_rng(RNG_SEED)
    word = np.concatenate([v.fp16_rounding_boundaries(), v.FP32_CORNERS,
                           v.fp32_random(rng, 200_000)])
    x = f32(word)
    out = g.fp32_to_fp16(word)
    ok = ~np.isnan(x)
    assert np.array_equal(f16(out)[ok], rne16(x[ok]))
    assert np.array_equal(out[ok] >> 15, (word[ok] >> 31).astype(np.uint16))   # signed zeros
    assert np.all(out[~ok] == 0x7E00)


@pytest.mark.parametrize(("word", "expected"), [
    (0x477F_EFFF, 0x7BFF),     # just below 65520 -> 65504
    (0x477F_F000, 0x7C00),     # 65520 is the tie -> even -> inf
    (0x3300_0000, 0x0000),     # 2**-25: tie between 0 and 2**-24 -> 0
    (0x3300_0001, 0x0001),     # just above -> smallest subnormal
    (0x387F_E000, 0x0400),     # largest subnormal + half ulp -> tie -> even (min normal)
    (0x387F_C000, 0x03FF),     # largest subnormal, exact
    (0xB880_0000, 0x8400),     # -2**-14 exact
    (0x7FC0_1234, 0x7E00),     # NaN payload dropped
])
def test_fp32_to_fp16_directed(word, expected):
    assert int(g.fp32_to_fp16(word)) == expected


# --- the MAC datapath -----------------------------------------------------------------------
def test_fp16_mul_fp32_is_exact():
    rng = np.random.default_rng(RNG_SEED)
    ca, cb = v.pairs(v.FP16_CORNERS, v.FP16_CORNERS)
    a = np.concatenate([ca, v.fp16_random(rng, 1_000_000)])
    b = np.concatenate([cb, v.fp16_random(rng, 1_000_000)])
    with np.errstate(invalid="ignore"):
        exact = f16(a) * f16(b)                         # 22-bit products: exact in float64
    out = g.fp16_mul_fp32(a, b)
    ok = ~np.isnan(exact)
    assert np.array_equal(f32(out)[ok], exact[ok])
    assert np.array_equal(out[ok] >> 31, ((a[ok] ^ b[ok]) >> 15).astype(np.uint32))
    assert np.all(out[~ok] == 0x7FC0_0000)
    # Subnormal x subnormal is still a normal FP32 number.
    assert int(g.fp16_mul_fp32(0x0001, 0x0001)) == 0x2780_0000   # 2**-48


def _fp32_add_cases(n):
    rng = np.random.default_rng(RNG_SEED)
    ca, cb = v.pairs(v.FP32_CORNERS, v.FP32_CORNERS)
    ra, rb = v.fp32_rounding_cases()
    a = v.fp32_random(rng, n)
    b = np.where(rng.random(n) < 0.75, v.fp32_near(rng, a), v.fp32_random(rng, n))
    return np.concatenate([ca, ra, a]), np.concatenate([cb, rb, b])


def test_fp32_add_is_correctly_rounded():
    a, b = _fp32_add_cases(1_000_000)
    with np.errstate(all="ignore"):
        # float64 has 53 >= 2*24 + 2 bits: rounding the float64 sum again to binary32 is
        # the correctly rounded binary32 sum (Figueroa 1995).
        exact = f32(a) + f32(b)
    out = g.fp32_add(a, b)
    ok = ~np.isnan(exact)
    assert np.array_equal(f32(out)[ok], rne32(exact[ok]))
    normal = ok & np.isfinite(f32(out)) & (np.abs(f32(out)) >= 2.0 ** -126)
    err = ulp_error(f32(out)[normal], exact[normal], man_bits=23, emin=-126)
    assert err.max() <= 0.5
    assert np.all(out[~ok] == 0x7FC0_0000)


def _rne32_fraction(q: Fraction) -> Fraction:
    """Exact RNE of a rational to binary32 (finite range only)."""
    if q == 0:
        return q
    mag = abs(q)
    e = max(mag.numerator.bit_length() - mag.denominator.bit_length(), -126)
    while Fraction(2) ** e > mag:
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    ulp = Fraction(2) ** (max(e, -126) - 23)
    k = mag / ulp
    lo = k.numerator // k.denominator
    rest = k - lo
    lo += 1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and lo % 2) else 0
    return (lo * ulp) * (1 if q > 0 else -1)


def test_fp32_add_matches_exact_rational_rounding():
    a, b = _fp32_add_cases(3000)
    fa, fb = f32(a), f32(b)
    out = f32(g.fp32_add(a, b))
    finite = np.isfinite(fa) & np.isfinite(fb)
    limit = Fraction(float(np.finfo(np.float32).max))
    checked = 0
    for x, y, r in zip(fa[finite], fb[finite], out[finite], strict=True):
        exact = Fraction(float(x)) + Fraction(float(y))
        if abs(exact) >= limit:
            continue
        assert Fraction(float(r)) == _rne32_fraction(exact), (x, y)
        checked += 1
    assert checked > 2500


@pytest.mark.parametrize(("a", "b", "expected"), [
    (0x3F80_0000, 0xBF80_0000, 0x0000_0000),   # x - x = +0
    (0x8000_0000, 0x8000_0000, 0x8000_0000),   # -0 + -0 = -0
    (0x0000_0000, 0x8000_0000, 0x0000_0000),   # +0 + -0 = +0
    (0x7F80_0000, 0xFF80_0000, 0x7FC0_0000),   # inf - inf = NaN
    (0xFF80_0000, 0x7F7F_FFFF, 0xFF80_0000),   # -inf + max = -inf
    (0x7F7F_FFFF, 0x7300_0000, 0x7F80_0000),   # max + half ulp (2**103): tie -> even -> inf
    (0x7F7F_FFFF, 0x72FF_FFFF, 0x7F7F_FFFF),   # below the tie: stays max
    (0x0080_0000, 0x8000_0001, 0x007F_FFFF),   # min normal - min subnormal: subnormal
    (0x3F80_0000, 0x3380_0000, 0x3F80_0000),   # 1 + 2**-24: tie -> even (down)
    (0x3F80_0001, 0x3380_0000, 0x3F80_0002),   # tie -> even (up)
    (0x7FC0_0001, 0x3F80_0000, 0x7FC0_0000),   # NaN canonical
])
def test_fp32_add_directed(a, b, expected):
    assert int(g.fp32_add(a, b)) == expected
    assert int(g.fp32_add(b, a)) == expected


def test_fp16_mac_is_one_rounding_of_the_exact_result():
    rng = np.random.default_rng(RNG_SEED)
    n = 1_000_000
    a, b = v.fp16_random(rng, n), v.fp16_random(rng, n)
    with np.errstate(all="ignore"):
        prod = f16(a) * f16(b)                          # exact
        acc = np.where(rng.random(n) < 0.8, v.fp32_near(rng, g.fp32_bits(prod), spread=26),
                       v.fp32_random(rng, n))
        exact = f32(acc) + prod                         # innocuous double rounding, as above
    out = g.fp16_mac(acc, a, b)
    ok = ~np.isnan(exact)
    assert np.array_equal(f32(out)[ok], rne32(exact[ok]))
    normal = ok & np.isfinite(f32(out)) & (np.abs(f32(out)) >= 2.0 ** -126)
    assert ulp_error(f32(out)[normal], exact[normal], man_bits=23, emin=-126).max() <= 0.5


def test_int8_mac_wraps():
    rng = np.random.default_rng(RNG_SEED)
    acc, k = v.pairs(v.INT32_CORNERS, np.arange(100))
    a8, b8 = v.pairs(v.INT8_CORNERS, v.INT8_CORNERS)
    acc = np.concatenate([acc, rng.integers(-(1 << 31), 1 << 31, 5000).astype(np.int32)])
    a = np.concatenate([a8[k], rng.integers(-128, 128, 5000).astype(np.int8)])
    b = np.concatenate([b8[k], rng.integers(-128, 128, 5000).astype(np.int8)])
    out = g.int8_mac(acc, a, b)
    for s, x, y, r in zip(acc.tolist(), a.tolist(), b.tolist(), out.tolist(), strict=True):
        assert r == (s + x * y + 2 ** 31) % 2 ** 32 - 2 ** 31
    assert int(g.int8_mac(2 ** 31 - 1, 1, 1)) == -(2 ** 31)
    assert int(g.int8_mac(0, -128, -128)) == 16384


def test_int32_to_int8_sat():
    acc, sh = v.pairs(v.INT32_CORNERS, np.arange(32))
    out = g.int32_to_int8_sat(acc, sh)
    for s, k, r in zip(acc.tolist(), sh.tolist(), out.tolist(), strict=True):
        assert r == max(-128, min(127, s >> k))      # Python >> floors like the RTL
    with pytest.raises(ValueError, match=r"^shift must be in 0\.\.31$"):
        g.int32_to_int8_sat(1, 32)


# --- element-wise FP16 ----------------------------------------------------------------------
def _fp16_operands(n):
    rng = np.random.default_rng(RNG_SEED)
    ca, cb = v.pairs(v.FP16_CORNERS, v.FP16_CORNERS)
    a = v.fp16_random(rng, n)
    near = ((a & 0xFC00) ^ (rng.integers(0, 2, n) << 15)) | rng.integers(0, 1024, n)
    b = np.where(rng.random(n) < 0.5, near, v.fp16_random(rng, n)).astype(np.uint16)
    return np.concatenate([ca, a]), np.concatenate([cb, b])


@pytest.mark.parametrize(("fn", "op"), [
    (g.vadd_h, np.add), (g.vsub_h, np.subtract), (g.vmul_h, np.multiply),
], ids=["vadd_h", "vsub_h", "vmul_h"])
def test_fp16_elementwise_is_correctly_rounded(fn, op):
    a, b = _fp16_operands(1_000_000)
    with np.errstate(all="ignore"):
        exact = op(f16(a), f16(b))        # FP16 sums and products are exact in float64
    out = fn(a, b)
    ok = ~np.isnan(exact)
    assert np.array_equal(f16(out)[ok], rne16(exact[ok]))
    normal = ok & np.isfinite(f16(out)) & (np.abs(f16(out)) >= 2.0 ** -14)
    assert ulp_error(f16(out)[normal], exact[normal], man_bits=10, emin=-14).max() <= 0.5
    assert np.all(out[~ok] == 0x7E00)


def test_scalar_forms_broadcast():
    a = np.array([0x3C00, 0x4000, 0xC200], dtype=np.uint16)            # 1, 2, -3
    assert g.vmul_hs(a, 0x3800).tolist() == [0x3800, 0x3C00, 0xBE00]   # * 0.5
    assert g.vadd_hs(a, 0x3C00).tolist() == [0x4000, 0x4200, 0xC000]   # + 1


def test_vmax_h_is_maximum_number():
    a, b = _fp16_operands(200_000)
    out = g.vmax_h(a, b)
    fa, fb = f16(a), f16(b)
    both = ~is_nan16(a) & ~is_nan16(b)
    with np.errstate(invalid="ignore"):
        larger = np.where(fb > fa, b, a)
    # Equal values: only +0 / -0 differ in bits; +0 wins.
    ties = both & (fa == fb) & (a != b)
    assert np.all(out[ties] == 0x0000)
    plain = both & ~ties
    assert np.array_equal(out[plain], larger[plain])
    assert np.array_equal(out[is_nan16(a) & ~is_nan16(b)], b[is_nan16(a) & ~is_nan16(b)])
    assert np.array_equal(out[is_nan16(b) & ~is_nan16(a)], a[is_nan16(b) & ~is_nan16(a)])
    assert np.all(out[is_nan16(a) & is_nan16(b)] == 0x7E00)
    assert int(g.vmax_h(0x8000, 0x0000)) == 0x0000 and int(g.vmax_h(0x0000, 0x8000)) == 0


# --- reductions -----------------------------------------------------------------------------
def _tree_reference(values: list, add):
    """Balanced tree by recursive halving at the largest power of two below the count,
    which is the same pairing as the level-by-level definition for powers of two."""
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return add(_tree_reference(values[:half], add), _tree_reference(values[half:], add))


def test_reduce_tree_fp32_order():
    # [2**24, 1, 1, 1]: the tree adds 1 + 1 = 2 before meeting 2**24 (exact 2**24 + 2);
    # a sequential sum would lose each 1 to rounding (ties to even) and give 2**24.
    lanes = g.fp32_bits([2.0 ** 24, 1.0, 1.0, 1.0])
    assert f32(g.reduce_tree_fp32(lanes)) == 2.0 ** 24 + 2
    rng = np.random.default_rng(RNG_SEED)
    for lanes_n in (1, 2, 8, 32, 128):
        batch = g.fp32_bits(rng.standard_normal((50, lanes_n)) * 10.0 ** rng.integers(-3, 4, (50, lanes_n)))
        got = g.reduce_tree_fp32(batch)
        for row, r in zip(batch, got, strict=True):
            assert int(r) == int(_tree_reference(list(row), g.fp32_add))


def test_reduce_tree_odd_lane_count_passes_the_last_sum_up():
    lanes = g.fp32_bits([1.0, 2.0, 3.0, 4.0, 2.0 ** 30])
    # ((1+2) + (3+4)) + 2**30: the lone fifth lane joins at the top.
    assert f32(g.reduce_tree_fp32(lanes)) == float(np.float32(10.0) + np.float32(2.0 ** 30))
    with pytest.raises(ValueError, match=r"^reduction needs at least one lane, not 0$"):
        g.reduce_tree_fp32(np.zeros((3, 0), dtype=np.uint32))


def test_reduce_tree_int32_wraps():
    rng = np.random.default_rng(RNG_SEED)
    lanes = rng.integers(-(1 << 31), 1 << 31, (100, 16)).astype(np.int32)
    expected = (lanes.astype(np.int64).sum(axis=1) + 2 ** 31) % 2 ** 32 - 2 ** 31
    assert np.array_equal(g.reduce_tree_int32(lanes), expected)


# --- non-linear helpers: exhaustive over all 65,536 FP16 inputs -------------------------------
with np.errstate(all="ignore"):
    _EXACT = {"exp": np.exp(X16), "rcp": 1.0 / X16, "rsqrt": 1.0 / np.sqrt(X16)}
_FN = {"exp": g.vexp_h, "rcp": g.vrcp_h, "rsqrt": g.vrsqrt_h}
#: Measured bounds (README table): max error in FP16 ulps of the exact result, and the
#: minimum share of inputs whose result equals the correctly rounded one.
_BOUND_ULP = {"exp": 0.54, "rcp": 0.59, "rsqrt": 0.53}
_MIN_CORRECTLY_ROUNDED = {"exp": 0.993, "rcp": 0.966, "rsqrt": 0.990}


@pytest.mark.parametrize("name", ["exp", "rcp", "rsqrt"])
def test_nonlinear_error_bound_exhaustive(name):
    exact, out = _EXACT[name], _FN[name](H)
    got = f16(out)
    ok = ~np.isnan(exact)
    in_range = ok & np.isfinite(exact) & (exact != 0) & (np.abs(exact) <= 65504) \
        & (np.abs(exact) >= 2.0 ** -24)
    err = ulp_error(got[in_range], exact[in_range], man_bits=10, emin=-14)
    assert err.max() <= _BOUND_ULP[name]
    correctly_rounded = (got[ok] == rne16(exact[ok])) & (np.signbit(got[ok]) == np.signbit(rne16(exact[ok])))
    assert correctly_rounded.mean() >= _MIN_CORRECTLY_ROUNDED[name]
    # Outside the finite range (overflow to inf, underflow to 0, exact inf/0 results) the
    # unit rounds exactly like RNE of the true value, sign included.
    outside = ok & ~in_range
    assert np.array_equal(got[outside], rne16(exact[outside]))
    assert np.array_equal(np.signbit(got[outside]), np.signbit(rne16(exact[outside])))
    assert np.all(out[~ok] == 0x7E00)


@pytest.mark.parametrize("name", ["exp", "rcp", "rsqrt"])
def test_nonlinear_is_monotone(name):
    """On each sign half the approximation never reverses (softmax/normalisation safety)."""
    for sign in (0, 1):
        x = H[(H >> 15) == sign]
        x = x[~np.isnan(X16[x])]
        x = x[np.argsort(X16[x], kind="stable")]
        y = f16(_FN[name](x))
        y = y[~np.isnan(y)]
        steps = np.sign(np.diff(y[np.isfinite(y)]))
        assert np.all(steps >= 0) or np.all(steps <= 0)


@pytest.mark.parametrize(("name", "x", "expected"), [
    ("exp", 0x0000, 0x3C00), ("exp", 0x8000, 0x3C00),    # exp(+-0) = 1
    ("exp", 0x3C00, 0x4170),                              # e rounds to 2.719 (0x4170)
    ("exp", 0x498B, 0x7BF7), ("exp", 0x498C, 0x7C00),     # 11.086 -> 65248, 11.094 -> inf
    ("exp", 0xCC55, 0x0001), ("exp", 0xCC56, 0x0000),     # -17.328 -> 2**-24, -17.344 -> 0
    ("exp", 0x7C00, 0x7C00), ("exp", 0xFC00, 0x0000),     # exp(+inf), exp(-inf)
    ("rcp", 0x4000, 0x3800), ("rcp", 0xC400, 0xB400),     # 1/2, -1/4
    ("rcp", 0x0000, 0x7C00), ("rcp", 0x8000, 0xFC00),     # 1/+-0 = +-inf
    ("rcp", 0x7C00, 0x0000), ("rcp", 0xFC00, 0x8000),     # 1/+-inf = +-0
    ("rcp", 0x0100, 0x7C00), ("rcp", 0x7BFF, 0x0100),     # 1/2**-16 = inf; 1/65504 subnormal
    ("rsqrt", 0x4400, 0x3800), ("rsqrt", 0x3C00, 0x3C00),  # 1/sqrt(4), 1/sqrt(1)
    ("rsqrt", 0x0000, 0x7C00), ("rsqrt", 0x8000, 0xFC00),  # +-0 -> +-inf (IEEE rSqrt)
    ("rsqrt", 0xBC00, 0x7E00), ("rsqrt", 0xFC00, 0x7E00),  # negative -> NaN
    ("rsqrt", 0x7C00, 0x0000), ("rsqrt", 0x0001, 0x6C00),  # +inf -> +0; 2**-24 -> 4096
    ("rcp", 0x7E01, 0x7E00), ("exp", 0xFFFF, 0x7E00),     # NaN canonical
])
def test_nonlinear_directed(name, x, expected):
    assert int(_FN[name](x)) == expected
