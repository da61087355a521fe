# amaranth: UnusedElaboratable=no
"""Shared modules (hwgen.library): the shared build computes what the inline build does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

from explorer.design import TileConfig
from hwgen import library
from hwgen.hier import library_instances, memory_instances, thread_parameters
from hwgen.rominit import rows_hex, standin_hex
from hwgen.synth import SynthError, synth_verilog, yosys_command
from hwgen.tile.issue import Issue
from hwgen.tile.memories import BankedMemory
from hwgen.tile.valu import ValuUnit
from hwgen.tile.vmac import VmacUnit

TILE = TileConfig(fetch=2, vlen=128, stations=2, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                  wmem_kib=16)


def _convert(component, name):
    return verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)


def _with_library(text):
    return text + "".join(library.module_verilog(n) for n in sorted(library_instances(text)))


def _yosys(tmp: Path, files: dict[str, str], script: str) -> str:
    for name, text in files.items():
        (tmp / name).write_text(text)
    (tmp / "s.ys").write_text(script)
    r = subprocess.run([*yosys_command(), "-q", "-l", "log.txt", "s.ys"], cwd=tmp,
                       capture_output=True, text=True)
    log = (tmp / "log.txt").read_text()
    assert r.returncode == 0, (log + r.stderr)[-3000:]
    return log


# --- units and decoders: structural equivalence of the two builds -------------------------

_READ = "read_verilog gold.v\nread_verilog gate.v\nproc\nflatten\nmemory\nopt_clean\n"


@pytest.mark.parametrize("which", ["issue", "valu", pytest.param("vmac", marks=pytest.mark.expensive)])
def test_shared_units_compute_what_inline_units_do(which, tmp_path):
    """A block built with ``shared=True`` (units/decoders as instances of the library
    modules) against the inline build, both flattened: the equivalence miter collapses to
    a constant once identical logic is merged, and Yosys proves it by induction."""
    make = {"issue": lambda s: Issue(TILE, 10, shared=s),
            "valu": lambda s: ValuUnit(TILE, 10, shared=s),
            "vmac": lambda s: VmacUnit(TILE, 10, shared=s)}[which]
    gate = _convert(make(True), "gate")
    assert library_instances(gate), "the shared build places no library instance"
    log = _yosys(tmp_path, {"gold.v": _convert(make(False), "gold"),
                            "gate.v": _with_library(gate)},
                 _READ + "miter -equiv -flatten -make_assert gold gate miter\n"
                 "hierarchy -top miter\nopt -full\nopt_merge -share_all\nopt -full\n"
                 "sat -verify -prove-asserts -tempinduct -set-init-zero -seq 1 miter\n")
    assert "Induction step proven: SUCCESS!" in log


def test_a_different_unit_is_not_equivalent(tmp_path):
    """The check above can fail: swapping the library's FP16 max for FP16 add is found."""
    gate = _convert(ValuUnit(TILE, 10, shared=True), "gate")
    lib = _with_library(gate)
    wrong = library.module_verilog("l2s_fp16_add").replace("module l2s_fp16_add", "module l2s_x")
    lib = lib.replace("module l2s_fp16_max(", "module l2s_fp16_max_unused(")
    # l2s_fp16_max with the ports of max but computing a + b
    lib += ("module l2s_fp16_max(a, b, o);\n  input [15:0] a;\n  input [15:0] b;\n"
            "  output [15:0] o;\n  l2s_x u(.a(a), .b(b), .sub(1'b0), .o(o));\nendmodule\n" + wrong)
    (tmp_path / "gold.v").write_text(_convert(ValuUnit(TILE, 10, shared=False), "gold"))
    (tmp_path / "gate.v").write_text(lib)
    (tmp_path / "s.ys").write_text(
        _READ + "miter -equiv -flatten -make_assert gold gate miter\nhierarchy -top miter\n"
        "opt -full\nopt_merge -share_all\nopt -full\n"
        "sat -verify -prove-asserts -tempinduct -set-init-zero -seq 1 miter\n")
    r = subprocess.run([*yosys_command(), "-q", "s.ys"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode != 0


# --- memory wrappers: bounded equivalence from reset ---------------------------------------

def _bmc(tmp, gold, gate, extra=None, steps=6):
    files = {"gold.v": gold, "gate.v": gate, **(extra or {})}
    return _yosys(tmp, files, _READ + "miter -equiv -flatten -make_assert -ignore_gold_x "
                  "gold gate miter\nhierarchy -top miter\n"
                  f"sat -verify -prove-asserts -set-init-zero -seq {steps} miter\n")


def test_sram_wrapper_banks_behave_like_amaranth_banks(tmp_path):
    """BankedMemory of two 4 x 64 banks: library SRAM wrappers against Amaranth memories,
    every input sequence of 6 cycles from reset (writes with word enables, reads, holds)."""
    gold = _convert(BankedMemory(8, 64, 4), "gold")
    gate = _with_library(_convert(BankedMemory(8, 64, 4, shared=True), "gate"))
    assert "l2s_sram_4x64" in gate
    assert "SUCCESS" in _bmc(tmp_path, gold, gate)


def test_rom_wrapper_reads_its_init_file_through_the_threaded_parameter(tmp_path):
    """A shared ROM BankedMemory reads the files its threaded parameters name: after
    Yosys elaborates it, each bank's memory holds exactly the rows written with
    rows_hex (what the inline ROM is initialised with), bank b from file P<b>."""
    import json

    rng = np.random.default_rng(5)
    rows = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    init = [int.from_bytes(r.tobytes(), "little") for r in rows]
    text = _convert(BankedMemory(8, 64, 4, rom=True, shared=True, init_param="P"), "gate")
    gate = thread_parameters(text, "gate", lambda p: f"{p}.hex")
    assert 'parameter P0 = "P0.hex";' in gate and ".INIT_FILE(P1)" in gate
    assert [m["init_param"] for m in memory_instances(gate)] == ["P0", "P1"]
    hexes = {f"P{b}.hex": rows_hex(rows[4 * b:4 * (b + 1)], 64) for b in range(2)}
    _yosys(tmp_path, {"gate.v": _with_library(gate), **hexes},
           "read_verilog gate.v\nhierarchy -top gate\nproc\nflatten\nmemory_collect\n"
           "write_json mem.json\n")
    cells = json.loads((tmp_path / "mem.json").read_text())["modules"]["gate"]["cells"]
    got = {}
    for name, cell in cells.items():
        if cell["type"] == "$mem_v2":
            bits = cell["parameters"]["INIT"]             # MSB first: the last row first
            bank = "bank0" if "bank0" in name else "bank1" if "bank1" in name else name
            got[bank] = [int(bits[len(bits) - 64 * (i + 1):len(bits) - 64 * i], 2)
                         for i in range(4)]
    assert got == {"bank0": init[:4], "bank1": init[4:]}


def test_rows_hex_and_standin():
    rows = np.array([[1, 2, 3, 4], [0xff, 0, 0, 0x80]], dtype=np.uint8)
    assert rows_hex(rows, 32) == "04030201\n800000ff\n"
    text = standin_hex("l2s_rom_8x64", 8, 64)
    assert text == standin_hex("l2s_rom_8x64", 8, 64) != standin_hex("l2s_rom_8x32", 8, 64)
    lines = text.split()
    assert len(lines) == 8 and {len(x) for x in lines} == {16} and len(set(lines)) == 8


# --- names, stubs and the loop check through a stub ---------------------------------------

def test_module_names_round_trip():
    assert library.parse_module_name("l2s_sram_1024x256").bits == 1024 * 256
    assert library.parse_module_name("l2s_rom_512x128").kind == "rom"
    name = library.decoder_module_name(TILE)
    assert library.parse_module_name(name).kind == "decoder"
    with pytest.raises(ValueError, match=r"^'l2s_nope' is not a shared module name$"):
        library.parse_module_name("l2s_nope")
    with pytest.raises(ValueError, match=r"^memory width must be a multiple of 32, not 48$"):
        library.sram_module_name(16, 48)


@pytest.mark.parametrize("name", ["l2s_fp32_add", "l2s_int8_mac", "l2s_sram_16x64",
                                  "l2s_rom_16x64", "l2s_sram_16x32"])
def test_stub_has_the_ports_of_the_module(name):
    import re

    def header(text):
        m = re.search(rf"^module {name}\((.*?)\);", text, re.M | re.S)
        decl = dict((p, w or "") for w, p in
                    re.findall(r"^\s+(?:input|output)(?: reg)? (\[\d+:0\] )?(\w+);", text, re.M))
        return sorted(x.strip() for x in m.group(1).split(",")), decl

    real = header(library.module_verilog(name))
    assert header(library.stub_verilog(name, comb=False)) == real
    if not name.startswith(("l2s_sram", "l2s_rom")):
        assert header(library.stub_verilog(name, comb=True)) == real


def test_loop_through_a_unit_is_found_with_stubs(tmp_path):
    """A loop closed through a unit that is a black box for synthesis is still found by
    the check pass, where the unit is a combinational stub."""
    top = ("module top(input [7:0] a, output [31:0] o);\n  wire [31:0] acc;\n"
           "  l2s_int8_mac u(.acc(acc), .a(a), .b(a), .o(o));\n  assign acc = o;\nendmodule\n")
    boxes = {"b.v": library.stub_verilog("l2s_int8_mac", comb=False)}
    stubs = {"s.v": library.stub_verilog("l2s_int8_mac", comb=True)}
    with pytest.raises(SynthError, match="combinational loop"):
        synth_verilog({"top.v": top}, "top", boxes=boxes, check_stubs=stubs, cache_dir=tmp_path)
    ok = top.replace("assign acc = o;", "assign acc = {24'd0, a};")
    s = synth_verilog({"top.v": ok}, "top", boxes=boxes, check_stubs=stubs, cache_dir=tmp_path)
    assert s.cells_by_type.get("l2s_int8_mac") == 1 and s.transistors == 0


def test_weights_are_split_over_the_group_and_written_per_bank():
    """Without a placement the mesh is one group: each op's bytes are split evenly over
    the tiles in row-major order and appended per tile; floats become FP16."""
    from explorer.design import Design, MeshConfig
    from explorer.errors import InputError
    from hwgen.rominit import weight_banks

    rom = TileConfig(fetch=1, vlen=128, stations=2, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                     wmem_kib=16, wmem_kind="rom")
    design = Design("w", "7nm", MeshConfig.uniform(1, 2, rom))
    a = np.linspace(-2, 2, 100)                       # float64 -> FP16
    b = np.arange(-20, 20, dtype=np.int8)
    params, files = weight_banks(design, {"a": a, "b": b})
    assert params == {(0, 0): {"WMEM_INIT_BANK0": "rom_init/tile_r0_c0_bank0.hex"},
                      (0, 1): {"WMEM_INIT_BANK0": "rom_init/tile_r0_c1_bank0.hex"}}
    for k, rc in enumerate(["r0_c0", "r0_c1"]):
        expect = np.concatenate([a[50 * k:50 * (k + 1)].astype("<f2").view(np.uint8),
                                 b[20 * k:20 * (k + 1)].view(np.uint8)])
        lines = files[f"rom_init/tile_{rc}_bank0.hex"].split()
        assert len(lines) == rom.wmem_rows                # the whole bank, zero-filled
        got = np.frombuffer(bytes.fromhex("".join(x for x in lines[:8])), np.uint8)
        got = got.reshape(8, 16)[:, ::-1].reshape(-1)     # lines are MSB first
        assert np.array_equal(got[:expect.size], expect) and not got[expect.size:].any()
    with pytest.raises(ValueError, match=r"^weights 'c' must be floating point"):
        weight_banks(design, {"c": np.arange(3, dtype=np.int32)})
    with pytest.raises(InputError, match=r"need 65,536 bytes, its WMEM holds 16,384$"):
        weight_banks(design, {"big": np.zeros(65536, np.float16)})


def test_port_skeleton_keeps_combinational_paths_only(tmp_path):
    """Two copies of a module in a ring: a combinational input -> output path closes a loop
    that the composition of skeletons finds; through a flip-flop it does not."""
    from hwgen.synth import compose_netlists, port_skeleton

    def cell(comb):
        out = "i ^ q" if comb else "q"
        return ("module cell(input clk, input i, output o);\n  reg q;\n"
                f"  always @(posedge clk) q <= i;\n  assign o = {out};\nendmodule\n")

    ring = ("module ring(input clk, output o);\n  wire a, b;\n"
            "  cell x(.clk(clk), .i(b), .o(a));\n  cell y(.clk(clk), .i(a), .o(b));\n"
            "  assign o = a;\nendmodule\n")
    for comb in (False, True):
        sk = port_skeleton({"cell.v": cell(comb)}, "cell", cache_dir=tmp_path)
        if comb:
            with pytest.raises(SynthError, match="combinational loop"):
                compose_netlists([sk], ring, "ring", cache_dir=tmp_path)
        else:
            compose_netlists([sk], ring, "ring", cache_dir=tmp_path)


def test_banked_memory_reads_every_bank_through_the_grouped_mux():
    """150 banks (more than one flat read case of 64): every bank's rows read back their
    initial values, and the bank selected last drives rdata while ce is low."""
    from amaranth.sim import Simulator

    rows, bank_rows = 150 * 2, 2
    rng = np.random.default_rng(3)
    init = [int(x) for x in rng.integers(0, 2**32, rows, dtype=np.uint64)]
    dut = BankedMemory(rows, 32, bank_rows, init=init, rom=True)
    assert dut.n_banks == 150

    async def tb(ctx):
        for a in [*range(0, rows, 3), rows - 1, 127, 128, 129]:
            ctx.set(dut.addr, a)
            ctx.set(dut.ce, 1)
            await ctx.tick()
            ctx.set(dut.ce, 0)
            assert ctx.get(dut.rdata) == init[a], a
            await ctx.tick()
            assert ctx.get(dut.rdata) == init[a], a

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def _banked_rom_in_a_parent(banks: int) -> str:
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Parent(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(8), "ce": In(1), "rdata": Out(64)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.wmem = mem = BankedMemory(4 * banks, 64, 4, rom=True, shared=True,
                                                   init_param="P")
            m.d.comb += [mem.addr.eq(self.addr), mem.ce.eq(self.ce), self.rdata.eq(mem.rdata)]
            return m

    return thread_parameters(_convert(Parent(), "top"), "top", lambda p: f"{p}.hex")


def test_macro_arrays_turns_a_many_bank_memory_into_one_black_box(tmp_path):
    """Above the bank limit the banked ROM becomes one black box with the same ports, the
    parent instantiates it without the banks' parameters, and Yosys elaborates the result;
    at the limit the text is unchanged."""
    from hwgen.hier import macro_arrays, split_modules

    text = _banked_rom_in_a_parent(8)
    assert library_instances(text)["l2s_rom_4x64"] == 8
    assert macro_arrays(text, 8) == (text, {})
    new, arrays = macro_arrays(text, 7)
    assert arrays == {"l2s_macro_wmem": 8}
    assert "l2s_rom_" not in new and "(* blackbox *)\nmodule l2s_macro_wmem(" in new
    old_body = dict(split_modules(text))["top.wmem"]
    new_body = dict(split_modules(new))["l2s_macro_wmem"]

    def ports(body):
        return sorted(ln.strip() for ln in body.splitlines()
                      if ln.strip().startswith(("input", "output")))
    assert ports(new_body) == ports(old_body) and len(ports(new_body)) == 5
    log = _yosys(tmp_path, {"top.v": new},
                 "read_verilog top.v\nhierarchy -check -top top\nproc\nflatten\n"
                 "tee -o stat.txt stat\n")
    assert "l2s_macro_wmem" in (tmp_path / "stat.txt").read_text(), log[-2000:]


def test_a_banked_memory_has_no_combinational_path_so_a_black_box_hides_no_loop(tmp_path):
    """Two banked ROMs in a ring (each one's read data addresses the other): composing their
    combinational skeletons (real bank wrappers, read mux, select register) finds no loop,
    so replacing the array by a black box cannot hide one."""
    from hwgen.synth import compose_netlists, port_skeleton

    arr = _with_library(_convert(BankedMemory(32, 64, 4, rom=True, shared=True,
                                              init_param="P"), "arr"))
    arr = thread_parameters(arr, "arr", lambda p: "")          # no contents needed
    sk = port_skeleton({"arr.v": arr}, "arr", cache_dir=tmp_path)
    ring = ("module ring(input clk, input rst, output [63:0] o);\n  wire [63:0] a, b;\n"
            "  arr x(.clk(clk), .rst(rst), .ce(1'b1), .we(2'b0), .addr(b[4:0]), .rdata(a));\n"
            "  arr y(.clk(clk), .rst(rst), .ce(1'b1), .we(2'b0), .addr(a[4:0]), .rdata(b));\n"
            "  assign o = a;\nendmodule\n")
    stats = compose_netlists([sk], ring, "ring", cache_dir=tmp_path)
    assert stats.flip_flops == 0          # the skeleton keeps only combinational paths
