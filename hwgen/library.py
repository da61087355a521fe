"""Shared Verilog modules of a design: arithmetic units, decoders and memory-bank wrappers.

A tile replicates the same combinational unit (an FP32 adder, an FP16 exp, ...) once per
lane and the same memory bank once per bank. Built inline, Amaranth elaborates and writes
every copy (a VLEN-512 tile was 7 MB of Verilog and 75 s of netlist building). With
``shared=True`` the tile's components place each such block as an
:class:`~amaranth.hdl.Instance` of a named module instead; this module names them and
produces their Verilog **once per design** (``rtl/l2s_units.v``, ``rtl/l2s_memories.v``):

* ``l2s_<unit>`` (e.g. ``l2s_fp32_add``): an arithmetic unit of :mod:`hwgen.arith`,
  converted by Amaranth from the very class the inline build uses, so both builds compute
  the same function by construction (``tests/test_library.py`` also proves it with Yosys).
* ``l2s_decoder_<latencies>``: the instruction decoder of one set of result latencies.
* ``l2s_sram_<rows>x<bits>`` (ports ``clk ce we addr wdata rdata``) and
  ``l2s_rom_<rows>x<bits>`` (``clk ce addr rdata``, parameter ``INIT_FILE``): hand-written
  behavioural single-port banks with the protocol of :class:`hwgen.tile.memories.SramBank`
  (synchronous read when ``ce`` and no ``we`` bit, ``rdata`` held otherwise; ``we`` has one
  bit per 32-bit word). One module per distinct shape: the place to swap in SRAM/ROM
  macros. A ROM loads ``INIT_FILE`` with ``$readmemh`` when it is not empty.

amaranth.sim cannot simulate instances, so simulation tests build with ``shared=False``;
the emitted RTL uses ``shared=True``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import ClockSignal, Instance, Value
from amaranth.lib import wiring
from amaranth.utils import ceil_log2

from .arith import (
    Fp16Add,
    Fp16Exp,
    Fp16Max,
    Fp16Mul,
    Fp16MulFp32,
    Fp16Rcp,
    Fp16Rsqrt,
    Fp32Add,
    Fp32ToFp16,
    Int8Mac,
    Int32ToInt8Sat,
)
from .isa import SPECS

__all__ = ["PREFIX", "WORD_BITS", "UNIT_MODULES", "LibraryModule", "unit_module_name",
           "decoder_module_name", "sram_module_name", "rom_module_name", "place",
           "sram_instance", "rom_instance", "init_param_placeholder", "parse_module_name",
           "module_verilog", "instantiated", "LIBRARY_RE", "stub_verilog"]

#: Prefix of every shared module name (never used by a design's own modules).
PREFIX = "l2s_"
#: Write-enable granularity of the memory wrappers: one ``we`` bit per 32-bit word.
WORD_BITS = 32

#: Arithmetic unit classes placed per lane, and their module names.
UNIT_MODULES: dict[type, str] = {
    Fp16MulFp32: "l2s_fp16_mul_fp32", Fp32Add: "l2s_fp32_add", Fp32ToFp16: "l2s_fp32_to_fp16",
    Int8Mac: "l2s_int8_mac", Int32ToInt8Sat: "l2s_int32_to_int8_sat", Fp16Add: "l2s_fp16_add",
    Fp16Mul: "l2s_fp16_mul", Fp16Max: "l2s_fp16_max", Fp16Exp: "l2s_fp16_exp",
    Fp16Rcp: "l2s_fp16_rcp", Fp16Rsqrt: "l2s_fp16_rsqrt",
}
_UNIT_BY_NAME = {name: cls for cls, name in UNIT_MODULES.items()}

#: Matches an instantiation of a shared module in Yosys-written Verilog.
LIBRARY_RE = re.compile(r"^\s+(l2s_[a-z0-9_]+) (?:#\(|\\?\S+ \()", re.M)

#: Latency attributes of a TileConfig the decoder bakes in (from the ISA table), sorted.
_DECODER_LATENCIES = tuple(sorted({s.latency_attr for s in SPECS if s.latency_attr}))


@dataclass(frozen=True)
class LibraryModule:
    """A shared module: ``kind`` is ``unit``, ``decoder``, ``sram`` or ``rom``; memories
    have ``rows`` x ``width``; decoders the latencies they were built for."""

    name: str
    kind: str
    rows: int = 0
    width: int = 0
    latencies: tuple[int, ...] = ()

    @property
    def bits(self) -> int:
        return self.rows * self.width


def unit_module_name(unit: type | wiring.Component) -> str:
    cls = unit if isinstance(unit, type) else type(unit)
    try:
        return UNIT_MODULES[cls]
    except KeyError:
        raise ValueError(f"{cls.__name__} is not a shared arithmetic unit") from None


def decoder_module_name(tile) -> str:
    """``l2s_decoder_<alu>_<load>_<mac>_<reduce>_<valu>_<vnet>``: the result latencies
    (cycles) the decoder bakes in, in the order of their TileConfig attribute names."""
    return PREFIX + "decoder_" + "_".join(str(getattr(tile, a)) for a in _DECODER_LATENCIES)


def _check_shape(rows: int, width: int) -> None:
    if rows < 1:
        raise ValueError(f"memory rows must be at least 1, not {rows}")
    if width < WORD_BITS or width % WORD_BITS:
        raise ValueError(f"memory width must be a multiple of {WORD_BITS}, not {width}")


def sram_module_name(rows: int, width: int) -> str:
    _check_shape(rows, width)
    return f"{PREFIX}sram_{rows}x{width}"


def rom_module_name(rows: int, width: int) -> str:
    _check_shape(rows, width)
    return f"{PREFIX}rom_{rows}x{width}"


def init_param_placeholder(param: str) -> str:
    """The string a ROM instance's ``INIT_FILE`` holds until emission replaces it by the
    enclosing module's parameter ``param`` (:func:`hwgen.emit.thread_parameters`)."""
    return f"@{param}@"


def parse_module_name(name: str) -> LibraryModule:
    """The :class:`LibraryModule` a shared module name stands for (ValueError if none)."""
    if name in _UNIT_BY_NAME:
        return LibraryModule(name, "unit")
    m = re.fullmatch(rf"{PREFIX}(sram|rom)_(\d+)x(\d+)", name)
    if m:
        return LibraryModule(name, m.group(1), int(m.group(2)), int(m.group(3)))
    m = re.fullmatch(rf"{PREFIX}decoder((?:_\d+){{{len(_DECODER_LATENCIES)}}})", name)
    if m:
        return LibraryModule(name, "decoder",
                             latencies=tuple(int(x) for x in m.group(1)[1:].split("_")))
    raise ValueError(f"{name!r} is not a shared module name")


def instantiated(verilog_text: str) -> list[str]:
    """Shared modules instantiated in ``verilog_text``, sorted, each once."""
    return sorted(set(LIBRARY_RE.findall(verilog_text)))


def _ports(iface) -> list[tuple[str, str, Value]]:
    return [("i" if member.flow == wiring.In else "o", "__".join(map(str, path)),
             Value.cast(value)) for path, member, value in iface.signature.flatten(iface)]


def place(m, name: str, component: wiring.Component, shared: bool, *,
          module: str | None = None) -> Any:
    """Add ``component`` to ``m`` as submodule ``name`` and return what to connect to.

    Inline (``shared=False``) that is the component itself. Shared, the submodule is an
    instance of ``module`` (default: the unit's library name) with one port per signature
    member, named as Amaranth names the converted module's ports, and the returned
    interface (``component.signature.create()``) carries the signals to connect. The
    placed blocks are combinational: no clock or reset port.
    """
    if not shared:
        m.submodules[name] = component
        return component
    component._MustUse__used = True         # only its signature is used (Amaranth's flag)
    iface = component.signature.create(path=(name,))
    m.submodules[name] = Instance(module or unit_module_name(component), *_ports(iface))
    return iface


def sram_instance(rows: int, width: int, *, ce, we, addr, wdata, rdata) -> Instance:
    """An instance of the ``l2s_sram_<rows>x<width>`` wrapper."""
    return Instance(sram_module_name(rows, width), ("i", "clk", ClockSignal()), ("i", "ce", ce),
                    ("i", "we", we), ("i", "addr", addr), ("i", "wdata", wdata),
                    ("o", "rdata", rdata))


def rom_instance(rows: int, width: int, *, init_param: str, ce, addr, rdata) -> Instance:
    """An instance of the ``l2s_rom_<rows>x<width>`` wrapper whose ``INIT_FILE`` becomes
    the enclosing module's parameter ``init_param`` at emission."""
    return Instance(rom_module_name(rows, width),
                    ("p", "INIT_FILE", init_param_placeholder(init_param)),
                    ("i", "clk", ClockSignal()), ("i", "ce", ce), ("i", "addr", addr),
                    ("o", "rdata", rdata))


# --- Verilog of the shared modules ------------------------------------------------------------


def _addr_bits(rows: int) -> int:
    return max(1, ceil_log2(rows))


def _sram_verilog(lib: LibraryModule) -> str:
    r, w = lib.rows, lib.width
    a, n = _addr_bits(r), w // WORD_BITS
    if n == 1:
        we, decl, write = "", "", "      if (we) mem[addr] <= wdata;\n"
    else:
        we, decl = f"[{n - 1}:0] ", "  integer i;\n"
        write = (f"      for (i = 0; i < {n}; i = i + 1)\n"
                 f"        if (we[i]) mem[addr][i*{WORD_BITS} +: {WORD_BITS}] <= "
                 f"wdata[i*{WORD_BITS} +: {WORD_BITS}];\n")
    return (f"// Single-port SRAM bank, {r} rows x {w} bits (behavioural model; replace by a\n"
            f"// macro wrapper with the same ports for place and route). A cycle with ce and\n"
            f"// no we bit reads row addr into rdata (held otherwise); we[i] writes word i.\n"
            f"module {lib.name}(clk, ce, we, addr, wdata, rdata);\n"
            f"  input clk;\n  input ce;\n  input {we}we;\n  input [{a - 1}:0] addr;\n"
            f"  input [{w - 1}:0] wdata;\n  output reg [{w - 1}:0] rdata;\n"
            f"  reg [{w - 1}:0] mem [0:{r - 1}];\n{decl}"
            f"  always @(posedge clk)\n    if (ce) begin\n"
            f"      if (we == {n}'d0) rdata <= mem[addr];\n"
            f"{write}"
            f"    end\nendmodule\n")


def _rom_verilog(lib: LibraryModule) -> str:
    r, w = lib.rows, lib.width
    a = _addr_bits(r)
    return (f"// Single-port ROM bank, {r} rows x {w} bits (behavioural model; replace by a\n"
            f"// ROM macro wrapper with the same ports for place and route). Contents come\n"
            f"// from INIT_FILE ($readmemh: one row per line, {w // 4} hex digits, row 0 first)\n"
            f"// when it is not empty. A cycle with ce reads row addr into rdata.\n"
            f"module {lib.name}(clk, ce, addr, rdata);\n"
            f"  parameter INIT_FILE = \"\";\n"
            f"  input clk;\n  input ce;\n  input [{a - 1}:0] addr;\n"
            f"  output reg [{w - 1}:0] rdata;\n"
            f"  reg [{w - 1}:0] mem [0:{r - 1}];\n"
            f"  initial if (INIT_FILE != \"\") $readmemh(INIT_FILE, mem);\n"
            f"  always @(posedge clk)\n    if (ce) rdata <= mem[addr];\nendmodule\n")


class _LatencyTile:
    """Stands in for a TileConfig where only the decoder's latencies matter."""

    def __init__(self, latencies: tuple[int, ...]):
        for attr, value in zip(_DECODER_LATENCIES, latencies, strict=True):
            setattr(self, attr, value)


def module_verilog(name: str) -> str:
    """Verilog text of one shared module (a unit or decoder converted by Amaranth, or a
    hand-written memory wrapper)."""
    lib = parse_module_name(name)
    if lib.kind == "sram":
        return _sram_verilog(lib)
    if lib.kind == "rom":
        return _rom_verilog(lib)
    if lib.kind == "decoder":
        from .tile.decode import Decoder
        component = Decoder(_LatencyTile(lib.latencies))
    else:
        component = _UNIT_BY_NAME[name]()
    return verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)


def _component(lib: LibraryModule) -> wiring.Component:
    if lib.kind == "decoder":
        from .tile.decode import Decoder
        return Decoder(_LatencyTile(lib.latencies))
    return _UNIT_BY_NAME[lib.name]()


def _port_list(lib: LibraryModule) -> list[tuple[str, str, int]]:
    """``[(direction "i"/"o", name, bits)]`` of a shared module, in declaration order."""
    if lib.kind in ("sram", "rom"):
        a, w, n = _addr_bits(lib.rows), lib.width, lib.width // WORD_BITS
        ports = [("i", "clk", 1), ("i", "ce", 1)]
        ports += [("i", "we", n)] if lib.kind == "sram" else []
        ports += [("i", "addr", a)]
        ports += [("i", "wdata", w)] if lib.kind == "sram" else []
        return ports + [("o", "rdata", w)]
    component = _component(lib)
    component._MustUse__used = True          # only its signature is read
    return [(d, n, len(v)) for d, n, v in _ports(component.signature.create())]


def stub_verilog(name: str, *, comb: bool) -> str:
    """A stand-in for shared module ``name`` with its exact ports, for checking a design
    that instantiates it without its logic. ``comb=False``: a black box (``(* blackbox *)``,
    memories keep their ``INIT_FILE`` parameter). ``comb=True`` (units and decoders only):
    every output bit is the XOR of every input bit, so any combinational path the real
    unit has, the stub has too and a loop through it cannot go unnoticed."""
    lib = parse_module_name(name)
    ports = _port_list(lib)
    if comb and lib.kind in ("sram", "rom"):
        raise ValueError(f"{name}: memories are clocked; only a black-box stub exists")

    def rng(bits: int) -> str:
        return f"[{bits - 1}:0] " if bits > 1 else ""

    lines = [("" if comb else "(* blackbox *)\n") +
             f"module {name}({', '.join(p for _, p, _ in ports)});"]
    if lib.kind == "rom":
        lines.append('  parameter INIT_FILE = "";')
    lines += [f"  {'input' if d == 'i' else 'output'} {rng(b)}{p};" for d, p, b in ports]
    if comb:
        ins = ", ".join(p for d, p, _ in ports if d == "i")
        lines += [f"  assign {p} = {{{b}{{^{{{ins}}}}}}};" for d, p, b in ports if d == "o"]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
