"""Verify a design on its own RTL: representative ops of its workload, model vs RTL cycles.

:func:`verify_design` picks one op of each represented kind (GEMV/GEMM, attention
scores and values, softmax, the norm, the gated activation, element-wise add) from the
design's workload, the tile class its placement maps it to, scales the shape down so a
Verilator run takes seconds, compiles it (:mod:`sim.compiler`) and runs it on the
emitted RTL of that class (:mod:`sim.rtl`): single tile, plus the largest matmul on the
top-left window of at most 2x2 tiles (1x2 or 2x1 on a one-row or one-column mesh) with its
all-gather and barrier over the NoC. Per point:

* functional: the RTL result equals the tile's golden model (the ISS, bit for bit) and is
  within :func:`sim.golden_ops.check`'s tolerance of the float64 numpy reference;
* cycles: the analytical model (``explorer.ppa`` via :mod:`sim.fidelity_iss`) vs the
  cycle counter the tile returns in its DONE packet (group: START to the last DONE).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from explorer.design import Design, TileConfig
from explorer.errors import InputError
from explorer.placement import default_placement
from explorer.ppa.problem import Problem
from explorer.workloads.graph import Op

from .compiler import GEMM_KINDS, compile_op, run_program
from .compiler.multitile import compile_group, run_group
from .compiler.program import RunOutcome, TileProgram
from .fidelity_iss import model_cycles, model_group_cycles, result_values
from .golden_ops import check, reference
from .rtl import RtlRun, rtl_mesh, run_on_rtl, sim_tile

__all__ = ["VerifyPoint", "scaled_op", "representative_points", "run_point", "verify_design",
           "summarize_points"]

#: Kinds verified (each family: the largest op of the first kind present; a full run
#: takes every kind present).
FAMILIES = (("matmul",), ("attn_qk",), ("attn_av",), ("softmax",), ("rmsnorm",), ("layernorm",),
            ("silu_mul",), ("gelu",), ("add",), ("rope",))
QUICK_FAMILIES = (("matmul",), ("softmax", "rmsnorm", "layernorm"))


@dataclass(frozen=True)
class VerifyPoint:
    """One RTL point: an op (already scaled), the tile class and the group shape."""

    name: str
    op: Op
    tile: TileConfig
    tile_class: int = 0
    group: tuple[int, int] = (1, 1)
    share: int = 1
    flit_bits: int = 64

    @property
    def tiles(self) -> int:
        return self.group[0] * self.group[1]

    @property
    def shape(self) -> dict[str, int]:
        o = self.op
        if o.kind in GEMM_KINDS:
            return {"batch": o.batch, "m": o.m, "k": o.k, "n": o.n}
        return {"elems": o.elems, "n": o.n}


def _down(x: int, step: int, cap: int) -> int:
    """``x`` capped at ``cap`` and rounded down to a multiple of ``step`` (at least one step)."""
    return max(step, min(x, cap) // step * step)


def scaled_op(op: Op, tile: TileConfig, share: int = 1) -> Op:
    """``op`` shrunk to a few thousand cycles: the kind and dtype stay, so does the
    shape's structure (rows, blocks per row, heads per KV head)."""
    L = tile.lanes_fp16
    k = op.kind
    base = dict(name=op.name, kind=k, block=op.block, layer=op.layer, dtype=op.dtype)
    if k == "matmul":
        return Op(**base, batch=1, m=min(op.m * op.batch, 4), k=_down(op.k, L, 256),
                  n=_down(op.n, L, 128))
    if k == "attn_qk":
        return Op(**base, batch=min(op.batch, 2 * share) // share * share or share, m=1,
                  k=_down(op.k, L, 128), n=_down(op.n, L, 128))
    if k == "attn_av":
        return Op(**base, batch=min(op.batch, 2 * share) // share * share or share, m=1,
                  k=_down(op.k, L, 128), n=_down(op.n, L, 128))
    if k in ("softmax", "rmsnorm", "layernorm"):
        n = _down(op.n, L, 512 if k != "softmax" else 256)
        return Op(**base, elems=2 * n, n=n)
    if k == "rope":
        n = _down(op.n, 2 * L, 128)
        return Op(**base, elems=_down(op.elems, n, 1024), n=n)
    n = _down(op.elems, L, 2048)
    return Op(**base, elems=n, n=n)


def _work_tile(tile: TileConfig) -> TileConfig:
    """The class's pipeline with small data memories and a loadable weight SRAM."""
    return replace(tile, dmem_kib=min(tile.dmem_kib, 64) if tile.dmem_kib >= 16 else 16,
                   wmem_kib=256, wmem_kind="sram")


def representative_points(design: Design, workload: str, *, quick: bool = False) -> list[VerifyPoint]:
    """The points :func:`verify_design` runs for ``design`` on ``workload``."""
    problem = Problem(workload=workload, node=design.node)
    model = problem.model
    tables = problem.tables
    placement = design.placement or default_placement(tables, design.mesh)
    from explorer.workloads import build_graph
    phases = [p for p in ("decode", "prefill", "encode") if p in model.phases]
    ops: list[tuple[Op, int]] = []
    for ph in phases:
        g = build_graph(model, ph, seq_len=256, batch=1, kv_len=256, images=1)
        heads = int(g.meta.get("num_heads", 1) or 1)
        share = max(1, heads // max(1, int(g.meta.get("num_kv_heads", heads) or heads)))
        ops += [(o, share) for o in g]
    mesh = design.mesh
    points = []
    families = QUICK_FAMILIES if quick else FAMILIES
    for fam in families:
        found = [(o, s) for o, s in ops if o.kind in fam and o.dtype == "fp16" and not o.causal]
        if not found:
            continue
        op, share = max(found, key=lambda x: x[0].macs if x[0].kind in GEMM_KINDS else x[0].elems)
        gi = placement.op_group.get(op.name, 0)
        gi = gi if gi < len(placement.groups) else 0
        r, c = placement.groups[gi].tiles[0]
        cls = mesh.class_grid[r][c]
        tile = _work_tile(mesh.tile_classes[cls])
        sop = scaled_op(op, tile, share)
        points.append(VerifyPoint(f"{sop.kind}:{op.name}", sop, tile, cls, (1, 1),
                                  share if op.kind in ("attn_qk", "attn_av") else 1,
                                  mesh.flit_bits))
    gemm = next((p for p in points if p.op.kind == "matmul"), None)
    # The multi-tile point runs on the top-left window of at most 2 x 2 tiles, so a 1 x N
    # or N x 1 mesh still exercises its NoC (1 x 2 or 2 x 1).
    group = (min(2, mesh.rows), min(2, mesh.cols))
    if gemm is not None and group[0] * group[1] > 1:
        op = replace(gemm.op, n=_down(2 * gemm.op.n, gemm.tile.lanes_fp16, 256))
        points.append(VerifyPoint(f"{op.kind}_{group[0]}x{group[1]}:{gemm.op.name}", op,
                                  gemm.tile, gemm.tile_class, group, 1, mesh.flit_bits))
    if not points:
        raise InputError(f"workload {model.name} has no op kind the RTL flow verifies")
    if quick:   # one single-tile matmul, one row-wise op, the multi-tile matmul
        points = points[:2] + points[-1:] if len(points) > 3 else points
    return points


def _compile(p: VerifyPoint, tile: TileConfig, seed: int) -> list[TileProgram]:
    rng = np.random.default_rng(seed)
    if p.tiles == 1:
        return [compile_op(p.op, tile, rng=rng, share=p.share)]
    return list(compile_group(p.op, tile, *p.group, rng=rng, share=p.share).programs)


def _accuracy(prog: TileProgram, values: dict) -> tuple[float, float]:
    """(worst error / tolerance, max |error|) of one tile's outputs vs float64."""
    out = RunOutcome(None, 0, {}, values)
    got = result_values(prog, out)
    inputs = dict(prog.inputs)
    ref = reference(prog.op.kind, inputs, dict(prog.meta))
    if prog.op.kind in GEMM_KINDS and prog.n_tiles > 1:
        c0, c1 = prog.meta["col0"], prog.meta["col1"]
        ref, inputs["b"] = ref[:, :, c0:c1], inputs["b"][:, :, c0:c1]
    ref = np.asarray(ref, float).reshape(got.shape) if np.size(ref) == np.size(got) else ref
    err = float(np.max(np.abs(np.asarray(got, float) - np.asarray(ref, float)))) \
        if np.size(got) else 0.0
    return check(prog.op.kind, got, ref, inputs), err


def run_point(p: VerifyPoint, *, seed: int = 0, cache_dir: Path | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Compile, run on the ISS and on the RTL, compare; one ``points`` entry."""
    say = progress or (lambda s: None)
    t0 = time.perf_counter()
    roomy = replace(p.tile, dmem_kib=512, wmem_kib=max(p.tile.wmem_kib, 4096), wmem_kind="sram")
    tile = sim_tile(p.tile, _compile(p, roomy, seed))
    progs = _compile(p, tile, seed)
    rows, cols = p.group
    if p.tiles == 1:
        iss = run_program(progs[0])
        iss_cycles, iss_outs = int(iss.cycles), [dict(iss.outputs)]
        iss_tiles = [iss_cycles]
        mc = model_cycles(p.op, tile, share=p.share)
    else:
        gp = compile_group(p.op, tile, rows, cols, rng=np.random.default_rng(seed), share=p.share)
        progs = list(gp.programs)
        run, iss_outs = run_group(gp, p.flit_bits)
        iss_cycles = int(run.cycles)
        iss_tiles = [int(x.cycles) for x in run.results]
        mc = model_group_cycles(p.op, tile, rows, cols, p.flit_bits, share=p.share)
    say(f"{p.name}: {p.op.kind} {p.shape} on {tile} {rows}x{cols}")
    build = rtl_mesh(tile, rows, cols, p.flit_bits, cache_dir=cache_dir, log=say)
    rtl: RtlRun = run_on_rtl(build, progs)
    bit_exact = all(np.array_equal(a[k], b[k]) for a, b in zip(iss_outs, rtl.outputs, strict=True)
                    for k in a)
    acc, err = 0.0, 0.0
    for prog, vals in zip(progs, rtl.outputs, strict=True):
        if not prog.outputs or (prog.op.kind in GEMM_KINDS and prog.n_tiles > 1
                                and prog.meta["col1"] <= prog.meta["col0"]):
            continue
        a, e = _accuracy(prog, vals)
        acc, err = max(acc, a), max(err, e)
    return {"op": p.name, "kind": p.op.kind, "shape": p.shape, "tile_class": p.tile_class,
            "tile": str(tile), "tiles": p.tiles, "model_cycles": round(mc, 1),
            "rtl_cycles": rtl.cycles, "iss_cycles": iss_cycles,
            "rtl_tile_cycles": list(rtl.tile_cycles), "iss_tile_cycles": iss_tiles,
            "cycle_error": mc / rtl.cycles - 1, "functional_pass": bool(bit_exact and acc <= 1.0),
            "bit_exact_vs_golden": bool(bit_exact), "tolerance_ratio": acc,
            "max_abs_err_vs_float64": err, "sim_cycles": rtl.sim_cycles,
            "run_cycles": rtl.run_cycles, "run_seconds": rtl.run_seconds,
            "build_seconds": build.build_seconds, "seconds": time.perf_counter() - t0}


def summarize_points(points: list[dict]) -> dict:
    """Medians, maxima, the functional verdict and Verilator speed of ``points``."""
    errs = [abs(q["cycle_error"]) for q in points]

    def speed(tiles: int):
        sel = [q for q in points if q["tiles"] == tiles and q["run_seconds"] > 0]
        if not sel:
            return None
        return sum(q["run_cycles"] for q in sel) / sum(q["run_seconds"] for q in sel)
    return {"cycle_error_median": statistics.median(errs) if errs else None,
            "cycle_error_max": max(errs) if errs else None,
            "functional_pass": all(q["functional_pass"] for q in points),
            "verilator_cycles_per_s": {"single_tile": speed(1), "mesh_2x2": speed(4)}}


def verify_design(design: Design, workload: str, *, quick: bool = False,
                  work_dir: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Run the representative points of ``design`` on its RTL (``quick``: at most 3).

    ``work_dir`` is accepted for the flow's contract; Verilator builds always go to the
    shared cache (:func:`sim.rtl.rtl_cache_dir`) so that runs reuse them. Weights are
    read from a WMEM SRAM whatever ``design.memory.weights`` says (the model is asked
    for the same on-die case).
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a Design, not {design!r}")
    if not isinstance(workload, str) or not workload:
        raise InputError("workload must be a non-empty name or path")
    t0 = time.perf_counter()
    points = representative_points(design, workload, quick=quick)
    cache = None     # builds are shared between runs (rtl_cache_dir), not per work_dir
    results = [run_point(p, cache_dir=cache, progress=progress) for p in points]
    return {"design": design.name, "workload": workload, "quick": quick, "points": results,
            **summarize_points(results), "elapsed_s": time.perf_counter() - t0}
