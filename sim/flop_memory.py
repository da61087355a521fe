"""Memories built from flip-flops: Yosys figures of the SRAM wrapper and the area model's line.

``python -m sim.flop_memory [--collect]``

A memory of at most ``FLOP_MEMORY_MAX_BITS`` bits (explorer.contract) is synthesised from
flip-flops, not a macro: in practice the IMEM banks of a tile with a small IMEM and a wide
fetch (one bank per fetch slot). ``--collect`` synthesises hwgen's SRAM wrapper
(``l2s_sram_<rows>x32``, the IMEM bank) at :data:`ROWS` with the same Yosys flow as a tile
and stores the figures with their provenance in ``sim/flop_memory_points.json``; then the
least-squares line ``NAND2-eq = per_bit x bits + per_bank`` is written into the
``flop_memory`` block of ``explorer/ppa/area_model.json``, which the area model uses for
those banks instead of SRAM bit cells (docs/area.md).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explorer import contract as C

from .area_points import ROOT, rtl_digest

__all__ = ["ROWS", "POINTS_PATH", "collect", "fit", "write_model", "main"]

POINTS_PATH = ROOT / "sim" / "flop_memory_points.json"
MODEL_PATH = ROOT / "explorer" / "ppa" / "area_model.json"
#: IMEM bank depths up to the flop limit (128 x 32 = 4096 bits); 86 is the F6 / 2 KiB bank.
ROWS = (16, 32, 64, 86, 128)
WIDTH = 32


def collect(rows: Sequence[int] = ROWS, path: Path = POINTS_PATH) -> list[dict[str, Any]]:
    """Synthesise the wrapper at each depth (cached by hwgen) and store the points."""
    from hwgen import library
    from hwgen.synth import FLOW_VERSION, synth_verilog, yosys_version

    points = []
    for r in rows:
        if r * WIDTH > C.FLOP_MEMORY_MAX_BITS:
            raise ValueError(f"{r} x {WIDTH} bits is above the flip-flop limit "
                             f"{C.FLOP_MEMORY_MAX_BITS}: it would be a macro")
        name = library.sram_module_name(r, WIDTH)
        s = synth_verilog({f"{name}.v": library.module_verilog(name)}, name, keep_netlist=False)
        points.append({"module": name, "rows": r, "bits": r * WIDTH, "nand2_eq": s.nand2_eq,
                       "flip_flops": s.flip_flops, "cells": s.cells})
    doc = {"_about": "Yosys generic synthesis (hwgen.synth.synth_verilog, abc -g cmos2) of "
                     "the SRAM wrapper below the flip-flop limit (sim/flop_memory.py)",
           "provenance": {"yosys": yosys_version(), "flow_version": FLOW_VERSION,
                          "rtl_src_sha256": rtl_digest(),
                          "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
           "points": points}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return points


def fit(points: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Least squares of NAND2-eq on (bits, 1): per-bit and per-bank terms, and the worst
    relative error of the line on the points."""
    bits = np.array([p["bits"] for p in points], float)
    y = np.array([p["nand2_eq"] for p in points], float)
    (per_bit, per_bank), *_ = np.linalg.lstsq(np.stack([bits, np.ones_like(bits)], 1), y,
                                              rcond=None)
    err = np.abs((per_bit * bits + per_bank) / y - 1).max()
    return {"nand2_per_bit": float(per_bit), "nand2_per_bank": float(per_bank),
            "max_rel_err": float(err)}


def write_model(path: Path = POINTS_PATH, model_path: Path = MODEL_PATH) -> dict[str, Any]:
    """Fit the stored points and write the ``flop_memory`` block of the area model."""
    points = json.loads(path.read_text())["points"]
    line = fit(points)
    model = json.loads(model_path.read_text())
    model["flop_memory"] = {
        "_about": (f"memory banks of at most {C.FLOP_MEMORY_MAX_BITS} bits are flip-flop "
                   "logic: NAND2-eq = nand2_per_bit x bits + nand2_per_bank per bank"),
        "nand2_per_bit": round(line["nand2_per_bit"], 4),
        "nand2_per_bank": round(line["nand2_per_bank"], 2),
        "provenance": {"source": "least squares to Yosys figures of hwgen's SRAM wrapper",
                       "command": "python -m sim.flop_memory --collect",
                       "points_file": "sim/flop_memory_points.json",
                       "points_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                       "max_rel_err": round(line["max_rel_err"], 4),
                       "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")}}
    tmp = model_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(model, indent=2) + "\n")
    tmp.replace(model_path)
    from explorer.ppa import area as A
    A.load_area_model.cache_clear()
    return model["flop_memory"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.flop_memory",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--collect", action="store_true",
                    help="synthesise the wrappers again before fitting")
    args = ap.parse_args(argv)
    if args.collect or not POINTS_PATH.exists():
        collect()
    print(json.dumps(write_model(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
