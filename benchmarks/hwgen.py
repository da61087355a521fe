"""RTL generator benchmark: tile conversion time and Yosys size over VLEN x FETCH, mesh emission.

    python benchmarks/hwgen.py [--json] [--vlen 128,256,512] [--fetch 1,2,4]
                               [--synth none|coarse|full] [--meshes 2,4,16] [--jobs 2]

Tiles: every (vlen, fetch) pair of an otherwise default TileConfig without WMEM (so the
figures are logic, not ROM initialisers), converted from scratch (no cache) in a 4 x 4
mesh with 512-bit flits; ``--synth coarse`` adds Yosys' coarse cell count (elaborate,
flatten, check -assert, ``synth -run :fine``) of the tile's own logic with its shared units
as combinational stubs, ``full`` the hierarchical flow of ``llm2silicon synth`` (tile =
own logic + shared modules by instance; NAND2-eq; minutes per tile). Meshes: N x N with three tile classes in stripes (a heterogeneous mesh),
emitted cold (empty RTL cache) and warm (cache filled by the cold run). Target: the
16 x 16 heterogeneous mesh emits cold in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

# This script is named like the package it measures: drop its own folder from the import
# path so that `import hwgen` finds the package rather than this file.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from explorer.design import Design, MeshConfig, TileConfig  # noqa: E402
from hwgen.emit import render_rtl  # noqa: E402
from hwgen.synth import check_verilog, synth_design  # noqa: E402
from hwgen.synthflow import library_stubs  # noqa: E402

__all__ = ["bench_tiles", "bench_meshes", "main"]

TARGET_16X16_S = 60.0
MESH_CLASSES = (TileConfig(vlen=256, fetch=2, wmem_kib=0, dmem_kib=32, imem_kib=4),
                TileConfig(vlen=512, fetch=2, wmem_kib=0, dmem_kib=64, imem_kib=8),
                TileConfig(vlen=128, fetch=1, wmem_kib=0, dmem_kib=16, imem_kib=2))


def _design(name: str, mesh: MeshConfig) -> Design:
    return Design(name, "7nm", mesh)


def bench_tiles(vlens, fetches, synth: str) -> list[dict]:
    rows = []
    for vlen in vlens:
        for fetch in fetches:
            tile = TileConfig(vlen=vlen, fetch=fetch, wmem_kib=0)
            design = _design(f"bench v{vlen} f{fetch}", MeshConfig.uniform(4, 4, tile))
            t0 = time.monotonic()
            files = render_rtl(design, cache=False, jobs=1)
            seconds = time.monotonic() - t0
            entry = json.loads(files["manifest.json"])["tile_modules"][0]
            text = files[entry["file"]]
            row = {"vlen": vlen, "fetch": fetch, "convert_s": round(seconds, 1),
                   "tile_verilog_mb": round(len(text) / 1e6, 2),
                   "library_instances": sum(entry["library_instances"].values()),
                   "memory_bits": sum(m["bits"] for m in entry["memories"] if m["macro"])}
            if synth != "none":
                t0 = time.monotonic()
                if synth == "coarse":
                    src = {f"{entry['module']}.v": text,
                           "stubs.v": library_stubs(entry["library_instances"], comb=True)}
                    row["own_coarse_cells"] = check_verilog(src, entry["module"])["cells"]
                else:
                    rep = synth_design(design, submesh=False)
                    s = rep["tiles"][0]["stats"]
                    row.update(cells=s["cells"], flip_flops=s["flip_flops"],
                               nand2_eq=s["nand2_eq"])
                row["yosys_s"] = round(time.monotonic() - t0, 1)
            rows.append(row)
            print(f"  tile v{vlen} f{fetch}: {row}", file=sys.stderr)
    return rows


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the conversion workers): on
    a loaded machine the wall time mostly measures the other jobs."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_meshes(sizes, jobs: int) -> list[dict]:
    rows = []
    for n in sizes:
        grid = tuple(tuple((c * 3) // n if n >= 3 else (r + c) % 3 for c in range(n))
                     for r in range(n))
        used = sorted({k for row in grid for k in row})
        mesh = MeshConfig(n, n, tuple(MESH_CLASSES[k] for k in used),
                          tuple(tuple(used.index(k) for k in row) for row in grid))
        design = _design(f"bench mesh {n}", mesh)
        with tempfile.TemporaryDirectory() as cache:
            old = os.environ.get("LLM2SILICON_CACHE")
            os.environ["LLM2SILICON_CACHE"] = cache
            try:
                t0, c0 = time.monotonic(), _cpu_s()
                files = render_rtl(design, jobs=jobs)
                cold, cold_cpu = time.monotonic() - t0, _cpu_s() - c0
                t0 = time.monotonic()
                render_rtl(design, jobs=jobs)
                warm = time.monotonic() - t0
            finally:
                if old is None:
                    del os.environ["LLM2SILICON_CACHE"]
                else:
                    os.environ["LLM2SILICON_CACHE"] = old
        manifest = json.loads(files["manifest.json"])
        top = manifest["top"]
        verilog_text = "".join(t for p, t in files.items() if p.endswith(".v"))
        tile_defs = re.findall(rf"^module {top}_tile\d+\(", verilog_text, re.M)
        rows.append({"mesh": f"{n}x{n}", "tiles": n * n,
                     "classes": len({c for c in mesh.tile_classes}),
                     "tile_modules_emitted": len(tile_defs),
                     "cold_s": round(cold, 1), "cold_cpu_s": round(cold_cpu, 1),
                     "warm_s": round(warm, 1),
                     "rtl_mb": round(len(verilog_text) / 1e6, 1)})
        print(f"  mesh {n}x{n}: {rows[-1]}", file=sys.stderr)
    return rows


def _table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.rjust(width[c]) for c in cols),
             "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(str(r.get(c, "")).rjust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--vlen", default="128,256,512")
    ap.add_argument("--fetch", default="1,2,4")
    ap.add_argument("--synth", choices=("none", "coarse", "full"), default="coarse")
    ap.add_argument("--meshes", default="2,4,16")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    tiles = bench_tiles(ints(args.vlen), ints(args.fetch), args.synth)
    meshes = bench_meshes(ints(args.meshes), args.jobs)
    big = [m for m in meshes if m["mesh"] == "16x16"]
    result = {"tiles": tiles, "meshes": meshes,
              "target_16x16_cold_s": TARGET_16X16_S,
              "target_met": None if not big else big[0]["cold_s"] < TARGET_16X16_S}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if tiles:
            print("Tiles (4x4 mesh, 512-bit flits, no WMEM), converted from scratch:")
            print(_table(tiles) + "\n")
        if meshes:
            print("Heterogeneous meshes (three classes), emission cold / warm RTL cache:")
            print(_table(meshes))
        if big:
            print(f"\n16x16 cold emission {big[0]['cold_s']} s; target < {TARGET_16X16_S:.0f} s: "
                  f"{'met' if result['target_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
