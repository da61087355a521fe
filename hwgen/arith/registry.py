"""Registry of the arithmetic units: component, golden function, directed and random stimulus.

:data:`UNITS` is what the RTL tests, ``benchmarks/arith.py`` and the harness iterate
over. Values travel as ``uint32`` arrays holding each port's bits (signed ports in two's
complement, masked to the port width); :func:`golden_bits` gives the expected outputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import wiring
from numpy.typing import NDArray

from .. import golden
from . import (
    Fp16Add,
    Fp16Exp,
    Fp16MacFp32,
    Fp16Max,
    Fp16Mul,
    Fp16MulFp32,
    Fp16Rcp,
    Fp16Rsqrt,
    Fp16ToFp32,
    Fp32Add,
    Fp32ToFp16,
    Int8Mac,
    Int32ToInt8Sat,
)
from . import vectors as v

__all__ = ["UnitSpec", "UNITS", "unit", "ports", "as_bits", "golden_bits"]

Arrays = list[NDArray]


@dataclass(frozen=True)
class UnitSpec:
    """One unit: its Verilog name, component class, golden function and stimulus.

    ``golden`` takes the input arrays in port order; ``random(rng, n)`` draws ``n``
    operand vectors; ``corners()`` returns the directed cases.
    """

    name: str
    component: type[wiring.Component]
    golden: Callable[..., NDArray]
    random: Callable[[np.random.Generator, int], Arrays]
    corners: Callable[[], Arrays]


def _fp16_add_golden(a, b, sub):
    return np.where(np.asarray(sub) != 0, golden.vsub_h(a, b), golden.vadd_h(a, b))


def _fp32_add_random(rng, n):
    a = v.fp32_random(rng, n)
    near = rng.random(n) < 0.75
    return [a, np.where(near, v.fp32_near(rng, a), v.fp32_random(rng, n))]


def _fp32_add_corners():
    a, b = v.pairs(v.FP32_CORNERS, v.FP32_CORNERS)
    ra, rb = v.fp32_rounding_cases()
    return [np.concatenate([a, ra]), np.concatenate([b, rb])]


def _fp32_to_fp16_random(rng, n):
    # Half uniform patterns, half with exponents around FP16's range (100..145).
    word = v.fp32_random(rng, n)
    exp = rng.integers(100, 146, n, dtype=np.uint32)
    near = (word & np.uint32(0x807F_FFFF)) | (exp << np.uint32(23))
    return [np.where(rng.random(n) < 0.5, near, word)]


def _mac_random(rng, n):
    a, b = v.fp16_random(rng, n), v.fp16_random(rng, n)
    prod = golden.fp16_mul_fp32(a, b)
    near = rng.random(n) < 0.75
    return [np.where(near, v.fp32_near(rng, prod, spread=26), v.fp32_random(rng, n)), a, b]


def _mac_corners():
    a, b = v.pairs(v.FP16_CORNERS, v.FP16_CORNERS)
    prod = golden.fp16_mul_fp32(a, b)
    sign = np.uint32(0x8000_0000)
    # Exact cancellation (acc = -a*b), one FP32 ulp either side, and every FP32 corner
    # as the accumulator against every 8th product.
    accs = [prod ^ sign, (prod ^ sign) + np.uint32(1), (prod ^ sign) - np.uint32(1)]
    ca, cb = a[::8], b[::8]
    acc_c, idx = v.pairs(v.FP32_CORNERS, np.arange(ca.shape[0]))
    return [np.concatenate(accs + [acc_c]), np.concatenate([a, a, a, ca[idx]]),
            np.concatenate([b, b, b, cb[idx]])]


def _int8_mac_corners():
    acc, k = v.pairs(v.INT32_CORNERS, np.arange(v.INT8_CORNERS.shape[0] ** 2))
    a, b = v.pairs(v.INT8_CORNERS, v.INT8_CORNERS)
    return [acc, a[k], b[k]]


def _int8_mac_random(rng, n):
    return [rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64).astype(np.int32),
            rng.integers(-128, 128, n, dtype=np.int16).astype(np.int8),
            rng.integers(-128, 128, n, dtype=np.int16).astype(np.int8)]


def _sat_random(rng, n):
    return [rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64).astype(np.int32),
            rng.integers(0, 32, n, dtype=np.uint32)]


def _sat_corners():
    a, s = v.pairs(v.INT32_CORNERS, np.arange(32, dtype=np.uint32))
    return [a, s]


def _fp16_add_random(rng, n):
    a = v.fp16_random(rng, n)
    # Half the b operands lie within 12 binades of a, often with a's exponent and
    # nearly its fraction (alignment, cancellation, ties).
    offset = np.where(rng.random(n) < 0.3, 0, rng.integers(-12, 13, n))
    exp = np.clip(((a >> 10) & 31).astype(np.int64) + offset, 0, 30)
    frac = np.where(rng.random(n) < 0.5, (a.astype(np.int64) & 1023) ^ rng.integers(0, 8, n),
                    rng.integers(0, 1024, n))
    near = (rng.integers(0, 2, n) << 15) | (exp << 10) | frac
    b = np.where(rng.random(n) < 0.5, near, v.fp16_random(rng, n)).astype(np.uint16)
    return [a, b, rng.integers(0, 2, n, dtype=np.uint8)]


def _fp16_add_corners():
    a, b = v.pairs(v.FP16_CORNERS, v.FP16_CORNERS)
    return [np.concatenate([a, a]), np.concatenate([b, b]),
            np.repeat(np.array([0, 1], dtype=np.uint8), a.shape[0])]


def _binary16_random(rng, n):
    return [v.fp16_random(rng, n), v.fp16_random(rng, n)]


def _binary16_corners():
    return list(v.pairs(v.FP16_CORNERS, v.FP16_CORNERS))


def _unary16_random(rng, n):
    return [v.fp16_random(rng, n)]


def _unary16_corners():
    return [v.all_fp16()]


UNITS: tuple[UnitSpec, ...] = (
    UnitSpec("fp16_to_fp32", Fp16ToFp32, golden.fp16_to_fp32, _unary16_random, _unary16_corners),
    UnitSpec("fp32_to_fp16", Fp32ToFp16, golden.fp32_to_fp16, _fp32_to_fp16_random,
             lambda: [np.concatenate([v.FP32_CORNERS, v.fp16_rounding_boundaries()])]),
    UnitSpec("fp16_mul_fp32", Fp16MulFp32, golden.fp16_mul_fp32, _binary16_random,
             _binary16_corners),
    UnitSpec("fp32_add", Fp32Add, golden.fp32_add, _fp32_add_random, _fp32_add_corners),
    UnitSpec("fp16_mac", Fp16MacFp32, golden.fp16_mac, _mac_random, _mac_corners),
    UnitSpec("int8_mac", Int8Mac, golden.int8_mac, _int8_mac_random, _int8_mac_corners),
    UnitSpec("int32_to_int8_sat", Int32ToInt8Sat, golden.int32_to_int8_sat, _sat_random,
             _sat_corners),
    UnitSpec("fp16_add", Fp16Add, _fp16_add_golden, _fp16_add_random, _fp16_add_corners),
    UnitSpec("fp16_mul", Fp16Mul, golden.vmul_h, _binary16_random, _binary16_corners),
    UnitSpec("fp16_max", Fp16Max, golden.vmax_h, _binary16_random, _binary16_corners),
    UnitSpec("fp16_exp", Fp16Exp, golden.vexp_h, _unary16_random, _unary16_corners),
    UnitSpec("fp16_rcp", Fp16Rcp, golden.vrcp_h, _unary16_random, _unary16_corners),
    UnitSpec("fp16_rsqrt", Fp16Rsqrt, golden.vrsqrt_h, _unary16_random, _unary16_corners),
)


def unit(name: str) -> UnitSpec:
    """The :data:`UNITS` entry called ``name``."""
    for spec in UNITS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown unit {name!r}; known: {', '.join(s.name for s in UNITS)}")


def ports(component: type[wiring.Component]) -> tuple[list[tuple[str, Shape]],
                                                      list[tuple[str, Shape]]]:
    """(inputs, outputs) of a combinational unit class as (name, shape) lists in
    declaration order (read from its signature annotations, without instantiating it)."""
    ins, outs = [], []
    for name, member in inspect.get_annotations(component).items():
        if isinstance(member, wiring.Member):
            (ins if member.flow == wiring.In else outs).append((name, Shape.cast(member.shape)))
    return ins, outs


def as_bits(values: NDArray, width: int) -> NDArray[np.uint32]:
    """Two's-complement bits of ``values`` masked to ``width`` (<= 32) as uint32."""
    return (np.asarray(values).astype(np.int64) & ((1 << width) - 1)).astype(np.uint32)


def golden_bits(spec: UnitSpec, inputs: Sequence[NDArray]) -> NDArray[np.uint32]:
    """The golden model's output for ``inputs``, as port bits."""
    _, outs = ports(spec.component)
    return as_bits(spec.golden(*inputs), outs[0][1].width)
