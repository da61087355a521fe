"""Model-vs-RTL fidelity: cycles and results of compiled ops on the emitted Verilog (Verilator).

    python benchmarks/fidelity.py [--json] [--only a,b] [--tiles t1,t2] [--no-groups]

Points: every (op, shape) of :data:`SINGLE` on the tile configurations of
:data:`SINGLE_TILES` (single tile) plus :data:`GROUP` ops on 2 x 2 meshes of
:data:`GROUP_TILES`, each run by :func:`sim.verify.run_point`: compiled by the kernel
compiler, run on the ISS and on the RTL (cocotb + Verilator through the host port),
RTL results compared bit for bit with the ISS (the tile's golden model) and with float64
numpy (:func:`sim.golden_ops.check`), the analytical model's cycles (``explorer.ppa``)
against the tile's cycle counter. Targets: median |cycle error| <= 5 %, max <= 15 %,
every functional result passes. Also reported: Verilator speed (cycles/s of the compute
stage) on one tile and on the 2 x 2 mesh, and, when ``sim.area_fit`` exists, its area R².
The first run builds one simulator per (tile, mesh) configuration (minutes each,
cached under ``build/rtl_sim``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.workloads.graph import Op  # noqa: E402
from sim.fidelity_iss import TILES  # noqa: E402
from sim.verify import VerifyPoint, run_point, summarize_points  # noqa: E402

#: Single-tile tiles (fidelity_iss names): single issue V128, two-wide V256, 4-fetch V128.
SINGLE_TILES = ("t1", "t2", "t5")
#: 2 x 2 meshes: the single-issue V128 tile and the two-wide V256 tile.
GROUP_TILES = ("t1", "t2")


def _op(name: str, kind: str, **kw) -> Op:
    return Op(name, kind, "decoder", 0, **kw)


#: (name, op, share) per single-tile point; shapes as in sim.fidelity_iss.
SINGLE = (
    ("gemv", _op("gemv", "matmul", m=1, k=512, n=128), 1),
    ("gemm_m4", _op("gemm_m4", "matmul", m=4, k=256, n=64), 1),
    ("gemm_m6", _op("gemm_m6", "matmul", m=6, k=128, n=64), 1),
    ("qk", _op("qk", "attn_qk", batch=8, m=1, k=64, n=128), 4),
    ("av", _op("av", "attn_av", batch=8, m=1, k=128, n=64), 4),
    ("rmsnorm", _op("rmsnorm", "rmsnorm", elems=1024, n=512), 1),
    ("softmax", _op("softmax", "softmax", elems=1024, n=256), 1),
    ("silu", _op("silu", "silu_mul", elems=2048, n=2048), 1),
    ("layernorm", _op("layernorm", "layernorm", elems=1024, n=256), 1),
    ("gelu", _op("gelu", "gelu", elems=1024, n=1024), 1),
    ("add", _op("add", "add", elems=2048, n=2048), 1),
    ("rope", _op("rope", "rope", elems=1024, n=64), 1),
)
#: 2 x 2 group points: matmul with its ring all-gather, row splits, attention split.
GROUP = (
    ("mm_2x2", _op("mm_2x2", "matmul", m=1, k=256, n=128), 1),
    ("gemm_2x2", _op("gemm_2x2", "matmul", m=2, k=256, n=64), 1),
    ("softmax_2x2", _op("softmax_2x2", "softmax", elems=8 * 256, n=256), 1),
    ("rmsnorm_2x2", _op("rmsnorm_2x2", "rmsnorm", elems=8 * 256, n=256), 1),
    ("add_2x2", _op("add_2x2", "add", elems=4096, n=4096), 1),
    ("qk_2x2", _op("qk_2x2", "attn_qk", batch=8, m=1, k=64, n=128), 4),
)


def points(tiles=SINGLE_TILES, group_tiles=GROUP_TILES) -> list[VerifyPoint]:
    pts = [VerifyPoint(f"{name}_{t}", op, TILES[t], 0, (1, 1), share, 64)
           for t in tiles for name, op, share in SINGLE]
    pts += [VerifyPoint(f"{name}_{t}", op, TILES[t], 0, (2, 2), share, 64)
            for t in group_tiles for name, op, share in GROUP]
    return pts


def area_summary() -> dict | None:
    """The area fit of ``sim.area_fit`` (another module) when it exists."""
    if importlib.util.find_spec("sim.area_fit") is None:
        return None
    from sim import area_fit
    try:
        return area_fit.summary()
    except Exception as e:      # noqa: BLE001 - another helper's module: report, don't die
        return {"error": f"{type(e).__name__}: {e}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--only", default="", help="comma-separated point names")
    ap.add_argument("--tiles", default=",".join(SINGLE_TILES), help="single-tile configurations")
    ap.add_argument("--group-tiles", default=",".join(GROUP_TILES), help="2x2 mesh configurations")
    ap.add_argument("--resume", type=Path, default=None,
                    help="JSON-lines file: append each point's result, skip points already there")
    args = ap.parse_args(argv)
    gt = tuple(t for t in args.group_tiles.split(",") if t)
    pts = points(tuple(t for t in args.tiles.split(",") if t), gt)
    if args.only:
        pts = [p for p in pts if p.name in args.only.split(",")]
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)
    done = {}
    if args.resume is not None and args.resume.exists():
        done = {r["op"]: r for r in map(json.loads, args.resume.read_text().splitlines()) if r}
    results = []
    for p in pts:
        if p.name in done:
            results.append(done[p.name])
            continue
        r = run_point(p, progress=log)
        results.append(r)
        if args.resume is not None:
            with args.resume.open("a") as f:
                f.write(json.dumps(r) + "\n")
        log(f"  -> model {r['model_cycles']:.0f} RTL {r['rtl_cycles']} ISS {r['iss_cycles']} "
            f"error {100 * r['cycle_error']:+.1f}% {'pass' if r['functional_pass'] else 'FAIL'}")
    s = summarize_points(results)
    area = area_summary()
    doc = {"n_points": len(results), **s, "area": area, "points": results,
           "elapsed_s": time.perf_counter() - t0,
           "build_seconds": sum(r["build_seconds"] for r in results)}
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{'point':16} {'tile':28} {'n':>2} {'model':>8} {'RTL':>8} {'ISS':>8} {'error':>7} "
          f"{'exact':>5} {'tol':>5}")
    for r in results:
        print(f"{r['op']:16} {r['tile']:28} {r['tiles']:2d} {r['model_cycles']:8.0f} "
              f"{r['rtl_cycles']:8d} {r['iss_cycles']:8d} {100 * r['cycle_error']:+6.1f}% "
              f"{'yes' if r['bit_exact_vs_golden'] else 'NO':>5} {r['tolerance_ratio']:5.2f}")
    sp = s["verilator_cycles_per_s"]
    print(f"{len(results)} points: median |cycle error| {100 * s['cycle_error_median']:.1f} % "
          f"(target <= 5 %), max {100 * s['cycle_error_max']:.1f} % (target <= 15 %); results "
          f"{'all pass' if s['functional_pass'] else 'NOT all pass'}")
    print("Verilator cycles/s (compute stage): " + ", ".join(
        f"{k} {v:,.0f}" for k, v in sp.items() if v))
    if area and "error" in area:
        print(f"area (sim.area_fit): not available ({area['error']})")
    elif area:
        print(f"area (sim.area_fit, {area['n_points']} tiles): logic R² {area['r2_logic']:.3f}, "
              f"slope {area['slope_logic']:.3f}; per node " + ", ".join(
                  f"{n} R² {v['r2']:.3f}" for n, v in area["nodes"].items()))
    print(f"elapsed {doc['elapsed_s']:.0f} s (Verilator builds {doc['build_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
