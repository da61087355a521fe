"""Analytical per-op cycles (``explorer.ppa``) vs the ISS's cycle-exact mode.

A single-tile point compiles one op for one tile configuration
(:func:`sim.compiler.compile_op`), runs it with :meth:`hwgen.iss.TileISS.run_timed`
(equal to the RTL core's cycle count) and compares with ``op_cost(...).cycles``. A group
point splits the op over a ``rows x cols`` tile group (:mod:`sim.compiler.multitile`),
runs the tiles on :class:`sim.network.MeshNetwork` and compares the group's cycles (START
to the last DONE) with the model's per-op figure for that group: the per-tile cycles of
``op_cost`` plus the all-gather and barrier terms of ``explorer.ppa.phase``. Results are
checked against the float64 references (:mod:`sim.golden_ops`).

``python -m sim.fidelity_iss [--quick] [--json] [--only a,b]`` prints the table (point,
model, ISS, error) with the median and maximum absolute error; ``--json`` gives
``points``, ``cycle_error_median``, ``cycle_error_max`` and ``functional_pass``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from explorer import contract as C
from explorer.design import TileConfig
from explorer.placement import group_hops
from explorer.ppa.kernels import B_NET, TileArrays, op_cost, plan_kernels
from explorer.ppa.kinds import KIND_INDEX
from explorer.ppa.phase import allgather_recv_bits, gather_cycles, gather_latency, sync_cycles
from explorer.workloads.graph import Op
from hwgen import golden as g

from .compiler import GEMM_KINDS, compile_op, run_program
from .compiler.multitile import compile_group, run_group
from .compiler.program import RunOutcome, TileProgram
from .golden_ops import check, reference

__all__ = ["Point", "PointResult", "TILES", "POINTS", "QUICK", "model_cycles",
           "model_group_cycles", "measure", "random_points", "result_values", "summary", "main"]

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
    group: tuple[int, int] = (1, 1)     # rows x cols of the tile group
    flit_bits: int = 64

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
    # Every element-wise kind on the single-issue tile and on wide ones.
    pts += [P("layernorm_t1", "t1", "layernorm", elems=768, n=384),
            P("layernorm_t3", "t3", "layernorm", elems=2048, n=1024),
            P("layernorm_t5", "t5", "layernorm", elems=1024, n=256),
            P("gelu_t2", "t2", "gelu", elems=2048, n=2048),
            P("gelu_t5", "t5", "gelu", elems=1536, n=1536),
            P("add_t2", "t2", "add", elems=3072, n=3072),
            P("add_t3", "t3", "add", elems=8192, n=8192),
            P("rope_t1", "t1", "rope", elems=1024, n=128),
            P("rope_t3", "t3", "rope", elems=4096, n=128),
            P("rope_t4", "t4", "rope", elems=2048, n=64),
            P("embed_t1", "t1", "embed", batch=1, m=3, k=32, n=256),
            P("embed_t4", "t4", "embed", batch=2, m=4, k=64, n=512),
            P("reshape_t1", "t1", "reshape", elems=1024, n=1024),
            P("reshape_t5", "t5", "reshape", elems=3072, n=3072),
            P("softmax_long_t3", "t3", "softmax", elems=2 * 2048, n=2048),
            P("rmsnorm_odd_t2", "t2", "rmsnorm", elems=2 * 384, n=384)]
    # Tile groups (matmul all-gathers its input; the rest split without transfers).
    pts += [P("mm_2x2_t2", "t2", "matmul", m=1, k=512, n=192, group=(2, 2)),
            P("mm_1x4_t3", "t3", "matmul", m=4, k=256, n=256, group=(1, 4), flit_bits=128),
            P("mm_2x3_t5", "t5", "matmul", m=2, k=256, n=96, group=(2, 3)),
            P("mm_2x2_t1", "t1", "matmul", m=1, k=256, n=128, group=(2, 2)),
            P("softmax_2x2_t5", "t5", "softmax", elems=8 * 256, n=256, group=(2, 2)),
            P("rmsnorm_2x3_t4", "t4", "rmsnorm", elems=8 * 512, n=512, group=(2, 3), flit_bits=128),
            P("silu_1x4_t2", "t2", "silu_mul", elems=8192, n=8192, group=(1, 4)),
            P("add_2x2_t1", "t1", "add", elems=4096, n=4096, group=(2, 2)),
            P("layernorm_2x2_t3", "t3", "layernorm", elems=8 * 512, n=512, group=(2, 2), flit_bits=128),
            P("rope_1x4_t4", "t4", "rope", elems=4096, n=64, group=(1, 4), flit_bits=128),
            P("qk_2x2_t3", "t3", "attn_qk", batch=8, m=1, k=64, n=128, share=4, group=(2, 2),
              flit_bits=128),
            P("av_2x3_t2", "t2", "attn_av", batch=12, m=1, k=128, n=64, share=2, group=(2, 3))]
    return pts


POINTS = _points()
#: The reduced set of the unit tests: every op kind, the single-issue tile (t1) and wide
#: ones, streamed weights, tile groups (matmul all-gather, row split, attention split).
QUICK = [p for p in POINTS if p.name in (
    "gemv_t1", "gemm_m4_t2", "qk_t5", "av_t3", "gemv_net_t2", "rmsnorm_t4", "softmax_t1",
    "silu_t1", "layernorm_t5", "gelu_t2", "add_t1", "rope_t1", "embed_t1", "reshape_t5",
    "softmax_t3", "mm_2x2_t2", "softmax_2x2_t5", "qk_2x2_t3")]


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


def model_group_cycles(op: Op, tile: TileConfig, rows: int, cols: int, flit_bits: int, *,
                       share: int = 1) -> float:
    """The model's cycles for ``op`` on a ``rows x cols`` group of ``tile``: per-tile
    compute, the matmul input's all-gather and the barrier (``explorer.ppa.phase``)."""
    n = rows * cols
    flits = C.packet_flits(tile.vlen, flit_bits)
    hops = group_hops([(r, c) for r in range(rows) for c in range(cols)])
    total = model_cycles(op, tile, n_tiles=n, share=share)
    if op.kind == "matmul" and n > 1:
        recv = allgather_recv_bits(op.batch * op.m * op.k * 2, n)
        total += float(gather_cycles(recv, tile.vlen, flits) + gather_latency(n, flits))
    return total + float(sync_cycles(n, hops, flits))


def _accuracy(prog: TileProgram, out: RunOutcome) -> float:
    got = result_values(prog, out)
    inputs = dict(prog.inputs)
    ref = reference(prog.op.kind, inputs, dict(prog.meta))
    if prog.op.kind in GEMM_KINDS and prog.n_tiles > 1:   # this tile's output columns
        c0, c1 = prog.meta["col0"], prog.meta["col1"]
        ref, inputs["b"] = ref[:, :, c0:c1], inputs["b"][:, :, c0:c1]
    return check(prog.op.kind, got, ref, inputs)


def measure(p: Point, seed: int = 0, tiles: dict[str, TileConfig] = TILES) -> PointResult:
    """Compile, run (timed) and compare one point (``p.tile`` names a tile of ``tiles``)."""
    tile = tiles[p.tile]
    op = p.op()
    rng = np.random.default_rng(seed)
    rows, cols = p.group
    if rows * cols > 1:
        gp = compile_group(op, tile, rows, cols, rng=rng, share=p.share)
        t0 = time.perf_counter()
        run, outs = run_group(gp, p.flit_bits)
        secs = time.perf_counter() - t0
        acc = max((_accuracy(prog, RunOutcome(r.cycles, r.instructions, r.unit_counts, o))
                   for prog, r, o in zip(gp.programs, run.results, outs, strict=True)
                   if prog.outputs and (op.kind not in GEMM_KINDS
                                        or prog.meta["col1"] > prog.meta["col0"])),
                  default=0.0)
        mc = model_group_cycles(op, tile, rows, cols, p.flit_bits, share=p.share)
        name = f"{tile} {rows}x{cols}"
        return PointResult(p.name, name, op.kind, mc, run.cycles, mc / run.cycles - 1, acc, secs)
    prog = compile_op(op, tile, rng=rng, share=p.share, b_source=B_NET if p.b_net else None)
    t0 = time.perf_counter()
    out = run_program(prog)
    secs = time.perf_counter() - t0
    mc = model_cycles(op, tile, share=p.share, weights_offchip=p.b_net)
    return PointResult(p.name, str(tile), op.kind, mc, int(out.cycles), mc / out.cycles - 1,
                       _accuracy(prog, out), secs)


#: Op shapes of the random check: every op family, sizes that run in a fraction of a second.
_RANDOM_OPS = (
    Point("softmax", "", "softmax", elems=1024, n=256), Point("rmsnorm", "", "rmsnorm", elems=1024, n=512),
    Point("silu", "", "silu_mul", elems=2048, n=2048), Point("gemm", "", "matmul", m=4, k=256, n=64),
    Point("gelu", "", "gelu", elems=1024, n=1024),
    Point("qk", "", "attn_qk", batch=8, m=1, k=64, n=128, share=4),
    Point("layernorm", "", "layernorm", elems=1024, n=256), Point("rope", "", "rope", elems=1024, n=64))


def random_points(n: int, seed: int = 1) -> tuple[list[Point], dict[str, TileConfig]]:
    """``n`` points on random tiles of the explorer's core ranges (``explorer/space.py``),
    ops cycling over every family: the check that the fixed tiles above are not special."""
    rng = np.random.default_rng(seed)
    pts, tiles = [], {}
    for i in range(n):
        name = f"r{i}"
        tiles[name] = TileConfig(
            fetch=int(rng.integers(1, 17)), vlen=int(rng.choice([128, 256, 512, 1024])),
            stations=int(rng.integers(1, 33)), xdp=int(rng.integers(1, 5)),
            vdp=int(rng.integers(1, 17)), xr_wp=int(rng.integers(1, 5)),
            vr_wp=int(rng.integers(1, 5)), dmem_kib=256,
            imem_kib=int(rng.choice([2, 4, 8, 16])), wmem_kib=256)
        op = _RANDOM_OPS[i % len(_RANDOM_OPS)]
        pts.append(replace(op, name=f"{op.name}_{name}", tile=name))
    return pts, tiles


def summary(results: list[PointResult]) -> dict[str, float]:
    errs = [abs(r.error) for r in results]
    return {"n_points": len(results), "cycle_error_median": statistics.median(errs),
            "cycle_error_max": max(errs), "functional_pass": all(r.accuracy <= 1.0 for r in results),
            "max_accuracy_ratio": max(r.accuracy for r in results)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.fidelity_iss", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the reduced point set of the tests")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--only", default="", help="comma-separated point names")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="N points on random tiles instead of the fixed set")
    args = ap.parse_args(argv)
    pts, tiles = (QUICK if args.quick else POINTS), TILES
    if args.only:
        pts = [p for p in POINTS if p.name in args.only.split(",")]
    if args.random:
        pts, tiles = random_points(args.random)
    results = [measure(p, tiles=tiles) for p in pts]
    s = summary(results)
    if args.json:
        json.dump({**s, "points": [asdict(r) for r in results]}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'point':18} {'tile':30} {'model':>9} {'ISS':>9} {'error':>8} {'acc':>6}")
    for r in results:
        print(f"{r.point:18} {r.tile:30} {r.model_cycles:9.0f} {r.iss_cycles:9d} "
              f"{100 * r.error:+7.1f}% {r.accuracy:6.2f}")
    print(f"median |error| {100 * s['cycle_error_median']:.1f}%, max {100 * s['cycle_error_max']:.1f}% "
          f"over {s['n_points']} points; results {'all' if s['functional_pass'] else 'NOT all'} within "
          f"tolerance (worst {s['max_accuracy_ratio']:.2f} of the bound)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
