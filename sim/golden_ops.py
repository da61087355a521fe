"""Float64 numpy references of every op kind and the tolerance policy of the kernel checks.

Reference = the op's mathematics in float64 on the (FP16-exact) operand values the
program was built from. Tolerance policy (checked by ``tests/test_compiler.py``):

* GEMM-like ops (FP16 in, FP32 accumulate, one FP16 rounding at the end): per element
  ``|y - ref| <= 2**-10 * |ref| + 2 * K * 2**-24 * sum_k |x_k b_k| + tiny`` -- one FP16
  rounding of the result plus the FP32 accumulation error bound (each of K adds rounds at
  2**-24 relative, Higham's gamma_K <= K u for the sum of absolute products).
* INT8 GEMM: exact (``sat8((sum x*b) >> shift)`` on wrapping INT32).
* Element-wise ops: a bound in FP16 ulps of the reference, ``ulps(kind)``: each FP16
  rounding of an intermediate contributes at most 0.5 ulp, each exp/rcp/rsqrt helper
  < 1 ulp (``hwgen/arith/README.md``), and errors of intermediates propagate through the
  condition number of the rest of the chain (exp amplifies absolute input error by |x|,
  subtraction of close values in rope/layernorm loses relative accuracy). The bound is
  stated per kind below, relative to max(|ref|, scale) where ``scale`` is the typical
  magnitude of the output (so near-zero outputs are held to absolute accuracy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["reference", "check", "ULPS", "FP16_EPS"]

#: FP16 unit roundoff (half an ulp of 1.0): 2**-11.
FP16_EPS = 2.0 ** -11

#: Error budget per kind, in FP16 ulps (2**-10 relative) of the output scale.
ULPS = {
    "add": 1, "reshape": 0, "embed": 0,
    "silu_mul": 8,        # 6 roundings + exp/rcp (<1 ulp each) amplified by |a| ~ 4
    "gelu": 12,           # cubic + exp argument amplification
    "rope": 4,            # two products and a sum/difference
    "rmsnorm": 8,         # sum conversion (half-up rounding), rsqrt, two products
    "layernorm": 12,      # mean subtraction (cancellation) + variance + 3 products
    "softmax": 12,        # max subtraction, exp with |x| up to ~10, sum, reciprocal
}


def reference(kind: str, inputs: dict, meta: dict | None = None) -> np.ndarray:
    """Float64 result of ``kind`` on ``inputs`` (shapes as the compiler builds them)."""
    meta = meta or {}
    if kind in ("matmul", "attn_qk", "attn_av"):
        return np.einsum("grk,gkc->grc", inputs["x"], inputs["b"])
    a = inputs.get("a")
    if kind == "add":
        return a + inputs["b"]
    if kind == "reshape":
        return a.copy()
    if kind == "silu_mul":
        return a / (1 + np.exp(-a)) * inputs["b"]
    if kind == "gelu":
        c = np.sqrt(2 / np.pi)
        return 0.5 * a * (1 + np.tanh(c * (a + 0.044715 * a ** 3)))
    if kind == "rope":
        x1, x2 = a[:, 0::2], a[:, 1::2]
        c, s = inputs["cos"], inputs["sin"]
        return np.stack([x1 * c - x2 * s, x2 * c + x1 * s], -1).reshape(a.shape)
    if kind == "softmax":
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    if kind == "rmsnorm":
        return a / np.sqrt((a ** 2).mean(1, keepdims=True) + float(inputs["eps"])) * inputs["w"]
    if kind == "layernorm":
        mu = a.mean(1, keepdims=True)
        var = ((a - mu) ** 2).mean(1, keepdims=True)
        return (a - mu) / np.sqrt(var + float(inputs["eps"])) * inputs["w"] + inputs["b"]
    if kind == "embed":
        return inputs["table"][inputs["ids"].astype(int)]
    raise ValueError(f"no reference for {kind!r}")


def gemm_bound(x: np.ndarray, b: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-element error bound of an FP16-in / FP32-accumulate / FP16-out GEMM."""
    k = x.shape[-1]
    absprod = np.einsum("grk,gkc->grc", np.abs(x), np.abs(b))
    return 2.0 ** -11 * np.abs(ref) + 2 * k * 2.0 ** -24 * absprod + 2.0 ** -24


def check(kind: str, got: np.ndarray, ref: np.ndarray, inputs: dict | None = None) -> float:
    """Worst error as a fraction of the allowed bound (<= 1 passes)."""
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    if got.shape != ref.shape:
        raise ValueError(f"result shape {got.shape} != reference shape {ref.shape}")
    if kind in ("matmul", "attn_qk", "attn_av"):
        bound = gemm_bound(inputs["x"], inputs["b"], ref)
    else:
        scale = max(float(np.abs(ref).max()), 1e-3) * (0.125 if kind == "softmax" else 1.0)
        mag = np.maximum(np.abs(ref), scale if kind in ("rope", "layernorm", "gelu", "silu_mul",
                                                         "softmax", "rmsnorm") else 0.0)
        bound = np.maximum(ULPS[kind], 0.5) * 2.0 ** -10 * mag + 2.0 ** -24
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got - ref) / bound))
