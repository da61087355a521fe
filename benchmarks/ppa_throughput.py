"""Throughput of the vectorised PPA model: full Llama 3.1 8B prefill + decode evaluation.

Usage: python benchmarks/ppa_throughput.py [--json] [--repeat N]
Targets (2 cores): >= 50,000 designs/s batched; <= 1 ms for one design.

Each figure is the best of ``--repeat`` runs, in wall-clock time (the JSON keys
``designs_per_s`` and ``single_design_ms``) and in this process's CPU time (``*_cpu``):
on a shared machine the CPU time shows what the model costs when other jobs take the
cores. The load average at the start is reported with them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from explorer.ppa.problem import Problem  # noqa: E402
from explorer.ppa.sample import random_design  # noqa: E402


def _time(fn, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeat`` calls (after one warm-up)."""
    fn()  # warm
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workload", default="llama3.1-8b")
    ap.add_argument("--node", default="3nm")
    args = ap.parse_args()
    problem = Problem(args.workload, args.node)
    rng = np.random.default_rng(0)
    designs = [random_design(rng, problem.tech.name, problem.tech.fmax_mhz) for _ in range(1024)]
    t0 = time.perf_counter()
    full = problem.batch_of(designs)
    build_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    rows = []
    for n in (1, 64, 1024):
        batch = full.take(np.arange(n))
        sec, cpu = _time(lambda b=batch: problem.evaluate(b), args.repeat)
        rows.append({"batch": n, "seconds": sec, "designs_per_s": n / sec, "ms_per_design": 1e3 * sec / n,
                     "cpu_seconds": cpu, "designs_per_s_cpu": n / cpu})
    t_one, _ = _time(lambda: problem.evaluate(problem.batch_of(designs[:1])), args.repeat)
    out = {"workload": problem.model.name, "node": problem.tech.name,
           "ops_per_design": sum(p.n_ops for p in problem.tables.phases.values()),
           "rows": rows, "designs_per_s": rows[-1]["designs_per_s"],
           "single_design_ms": rows[0]["seconds"] * 1e3,
           "designs_per_s_cpu": rows[-1]["designs_per_s_cpu"],
           "single_design_ms_cpu": rows[0]["cpu_seconds"] * 1e3,
           "single_design_with_placement_ms": t_one * 1e3,
           "batch_build_s_per_1024": build_s, "load_average_1min": load}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"PPA model throughput: {out['workload']} prefill+decode at {out['node']} "
          f"({out['ops_per_design']} ops per design)")
    print(f"{'batch':>6} {'seconds':>10} {'designs/s':>12} {'ms/design':>10} {'CPU s':>10} {'designs/CPU s':>14}")
    for r in rows:
        print(f"{r['batch']:>6} {r['seconds']:>10.5f} {r['designs_per_s']:>12,.0f} {r['ms_per_design']:>10.4f}"
              f" {r['cpu_seconds']:>10.5f} {r['designs_per_s_cpu']:>14,.0f}")
    print(f"load average (1 min) at the start: {load:.1f} on {os.cpu_count()} cores")
    print(f"single design incl. default placement + batch build: {out['single_design_with_placement_ms']:.3f} ms")


if __name__ == "__main__":
    main()
