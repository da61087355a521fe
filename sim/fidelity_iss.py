"""Analytical per-op cycles (``explorer.ppa.kernels.op_cost``) vs the ISS's cycle-exact mode.

Each point compiles one op for one tile configuration (:func:`sim.compiler.compile_op`),
runs it with :meth:`hwgen.iss.TileISS.run_timed` (equal to the RTL core's cycle count)
and compares with the model's single-tile cycles for the same op and tile. Results are
also checked against the float64 references (:mod:`sim.golden_ops`).

``python -m sim.fidelity_iss [--quick] [--json]`` prints the table (point, model, ISS,
error) with the median and maximum absolute error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from explorer.design import TileConfig
from explorer.ppa.kernels import B_NET, TileArrays, op_cost, plan_kernels
from explorer.ppa.kinds import KIND_INDEX
from explorer.workloads.graph import Op
from hwgen import golden as g

from .compiler import GEMM_KINDS, compile_op, run_program
from .compiler.program import RunOutcome, TileProgram
from .golden_ops import check, reference

__all__ = ["Point", "PointResult", "TILES", "POINTS", "QUICK", "model_cycles", "measure",
           "result_values", "summary", "main"]

#: Tile configurations spanning VLEN 128-512, FETCH 1-8, VDP 1-4 and IMEM 1-16 KiB.
TILES = {
    "t1": TileConfig(fetch=1, vlen=128, stations=4, xdp=1, vdp=1, xr_wp=1, vr_wp=1,
                     dmem_kib=64, imem_kib=1, wmem_kib=256),
    "t2": TileConfig(fetch=2, vlen=256, stations=8, xdp=1, vdp=2, xr_wp=1, vr_wp=1,
                     dmem_kib=64, imem_kib=4, wmem_kib=256),
    "t3": TileConfig(fetch=4, vlen=512, stations=8, xdp=2, vdp=3, xr_wp=2, vr_wp=2,
                     dmem_kib=128, imem_kib=8, wmem_kib=512),
    "t4": TileConfig(fetch=8, vlen=256, stations=16, xdp=2, vdp=4, xr_wp=2, vr_wp=2,
                     dmem_kib=128, imem_kib=16, wmem_kib=256),
    "t5": TileConfig(fetch=4, vlen=128, stations=8, xdp=1, vdp=2, xr_wp=1, vr_wp=1,
                     dmem_kib=64, imem_kib=2, wmem_kib=256),
}


@dataclass(frozen=True)
class Point:
    """One (op, shape, tile) comparison point."""

    name: str
    tile: str
    kind: str
    batch: int = 1
    m: int = 1
    k: int = 0
    n: int = 0
    elems: int = 0
    share: int = 1
    b_net: bool = False

    def op(self) -> Op:
        return Op(self.name, self.kind, "decoder", 0, batch=self.batch, m=self.m, k=self.k,
                  n=self.n, elems=self.elems)


def _points() -> list[Point]:
    P = Point
    pts = []
    for t in ("t1", "t2", "t3", "t4", "t5"):
        pts += [P(f"gemv_{t}", t, "matmul", m=1, k=512, n=128),
                P(f"gemm_m4_{t}", t, "matmul", m=4, k=256, n=64),
                P(f"gemm_m6_{t}", t, "matmul", m=6, k=128, n=64),
                P(f"qk_{t}", t, "attn_qk", batch=8, m=1, k=64, n=128, share=4),
                P(f"av_{t}", t, "attn_av", batch=8, m=1, k=128, n=64, share=4),
                P(f"rmsnorm_{t}", t, "rmsnorm", elems=1024, n=512),
                P(f"softmax_{t}", t, "softmax", elems=1024, n=256),
                P(f"silu_{t}", t, "silu_mul", elems=2048, n=2048)]
    pts += [P("gemv_net_t2", "t2", "matmul", m=1, k=256, n=128, b_net=True),
            P("gemm_net_t3", "t3", "matmul", m=4, k=256, n=64, b_net=True),
            P("layernorm_t2", "t2", "layernorm", elems=1024, n=256),
            P("layernorm_t4", "t4", "layernorm", elems=1024, n=512),
            P("gelu_t1", "t1", "gelu", elems=1024, n=1024),
            P("gelu_t3", "t3", "gelu", elems=4096, n=4096),
            P("add_t1", "t1", "add", elems=2048, n=2048),
            P("add_t4", "t4", "add", elems=4096, n=4096),
            P("rope_t2", "t2", "rope", elems=2048, n=64),
            P("rope_t5", "t5", "rope", elems=1024, n=64),
            P("embed_t2", "t2", "embed", batch=1, m=4, k=64, n=256),
            P("reshape_t3", "t3", "reshape", elems=4096, n=4096)]
    return pts


POINTS = _points()
#: A fast subset for the unit tests (~10 points, a few seconds).
QUICK = [p for p in POINTS if p.name in (
    "gemv_t1", "gemm_m4_t2", "qk_t5", "av_t3", "rmsnorm_t4", "softmax_t5", "silu_t2",
    "layernorm_t2", "add_t4", "gelu_t3", "gemv_net_t2")]


def model_cycles(op: Op, tile: TileConfig, *, n_tiles: int = 1, share: int = 1,
                 weights_offchip: bool = False, kv_offchip: bool = False) -> float:
    """``op_cost(...).cycles`` of ``op`` on one group entry of ``n_tiles`` tiles of ``tile``."""
    a = {f: np.array([[getattr(tile, f)]]) for f in
         ("vlen", "fetch", "stations", "xdp", "vdp", "xr_wp", "vr_wp", "imem_kib")}
    plan = plan_kernels(np.array([KIND_INDEX[op.kind]]), np.array([op.dtype == "int8"]),
                        np.array([op.batch]), np.array([op.m]), np.array([op.k]),
                        np.array([op.n]), np.array([op.elems]), np.array([share]))
    cost = op_cost(TileArrays.of(**a), plan, np.array([[n_tiles]]), np.array([[weights_offchip]]),
                   np.array([[kv_offchip]]))
    return float(cost.cycles[0, 0])


def result_values(prog: TileProgram, out: RunOutcome) -> np.ndarray:
    """The program's result as float64 in the reference's shape."""
    kind = prog.op.kind
    if kind in GEMM_KINDS:
        vals = [out.outputs[f"y{i}"] for i in range(len(prog.outputs))]
        arr = np.stack(vals).astype(float) if prog.op.dtype == "int8" else \
            np.stack([g.fp16_values(v).astype(float) for v in vals])
        return arr
    y = g.fp16_values(out.outputs["y"]).astype(float)
    if kind == "rope":
        n = prog.inputs["a"].shape[1]
        L = prog.tile.lanes_fp16
        pairs = y.reshape(-1, 2, L).transpose(0, 2, 1).reshape(-1, 2)
        return pairs[:n // 2].reshape(1, n)
    ref_cols = prog.inputs["a"].shape[1] if "a" in prog.inputs else prog.inputs["table"].shape[1]
    return y[:, :ref_cols]


@dataclass(frozen=True)
class PointResult:
    point: str
    tile: str
    kind: str
    model_cycles: float
    iss_cycles: int
    error: float             # model / ISS - 1
    accuracy: float          # worst error / allowed bound (<= 1 passes)
    seconds: float


def measure(p: Point, seed: int = 0) -> PointResult:
    """Compile, run (timed) and compare one point."""
    tile = TILES[p.tile]
    op = p.op()
    prog = compile_op(op, tile, rng=np.random.default_rng(seed), share=p.share,
                      b_source=B_NET if p.b_net else None)
    t0 = time.perf_counter()
    out = run_program(prog)
    secs = time.perf_counter() - t0
    got = result_values(prog, out)
    acc = check(op.kind, got, reference(op.kind, dict(prog.inputs), dict(prog.meta)), dict(prog.inputs))
    mc = model_cycles(op, tile, share=p.share, weights_offchip=p.b_net)
    return PointResult(p.name, str(tile), op.kind, mc, int(out.cycles), mc / out.cycles - 1, acc, secs)


def summary(results: list[PointResult]) -> dict[str, float]:
    errs = [abs(r.error) for r in results]
    return {"points": len(results), "median_abs_error": statistics.median(errs),
            "max_abs_error": max(errs), "max_accuracy_ratio": max(r.accuracy for r in results)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.fidelity_iss", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the reduced point set of the tests")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--only", default="", help="comma-separated point names")
    args = ap.parse_args(argv)
    pts = QUICK if args.quick else POINTS
    if args.only:
        pts = [p for p in POINTS if p.name in args.only.split(",")]
    results = [measure(p) for p in pts]
    s = summary(results)
    if args.json:
        json.dump({"points": [asdict(r) for r in results], "summary": s}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'point':16} {'tile':26} {'model':>9} {'ISS':>9} {'error':>8} {'acc':>6}")
    for r in results:
        print(f"{r.point:16} {r.tile:26} {r.model_cycles:9.0f} {r.iss_cycles:9d} "
              f"{100 * r.error:+7.1f}% {r.accuracy:6.2f}")
    print(f"median |error| {100 * s['median_abs_error']:.1f}%, max {100 * s['max_abs_error']:.1f}% "
          f"over {s['points']} points; worst result error {s['max_accuracy_ratio']:.2f} of the bound")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
