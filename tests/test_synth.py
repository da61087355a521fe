# amaranth: UnusedElaboratable=no
"""Yosys synthesis: counts by hand, latch and loop checks, caching, memories, property test."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from explorer.design import Design, MeshConfig, TileConfig
from hwgen.emit import SYNTH_MEMORY_MAX_BITS, memories, render_rtl
from hwgen.mesh import connect_grid
from hwgen.noc.router import ALLOWED_TURNS, PORTS, Router
from hwgen.synth import (
    Memory,
    SynthError,
    check_verilog,
    compose_netlists,
    synth_design,
    synth_verilog,
)
from hwgen.synthflow import library_stubs
from hwgen.tile.memories import RomBank, SramBank
from sim.toolchain import verilator_available

pytestmark = pytest.mark.synth

NAND_FF = ("module t(input clk, input a, input b, output reg q);\n"
           "  always @(posedge clk) q <= ~(a & b);\nendmodule\n")


def test_counts_of_a_hand_countable_module(tmp_path):
    """q <= ~(a & b): one NAND2 (4 transistors) + one D flip-flop (16, stat -tech cmos)."""
    s = synth_verilog({"t.v": NAND_FF}, "t", cache_dir=tmp_path)
    assert (s.cells, s.flip_flops, s.transistors, s.latches) == (2, 1, 20, 0)
    assert s.nand2_eq == 5.0 and s.cells_by_type == {"$_DFF_P_": 1, "$_NAND_": 1}


def test_rerun_is_served_from_the_cache(tmp_path):
    first = synth_verilog({"t.v": NAND_FF}, "t", cache_dir=tmp_path)
    t0 = time.monotonic()
    again = synth_verilog({"t.v": NAND_FF}, "t", cache_dir=tmp_path)
    assert again.cached and not first.cached and time.monotonic() - t0 < 5
    assert again.to_dict() == dict(first.to_dict(), cached=True)
    changed = synth_verilog({"t.v": NAND_FF.replace("~(a & b)", "a | b")}, "t", cache_dir=tmp_path)
    assert not changed.cached


def test_latch_is_reported(tmp_path):
    latch = "module l(input en, input d, output reg q);\n  always @* if (en) q = d;\nendmodule\n"
    with pytest.raises(SynthError, match=r"^l has latches \(signals `\\l\.\\q'\)$"):
        synth_verilog({"l.v": latch}, "l", cache_dir=tmp_path)
    with pytest.raises(SynthError, match=r"^l has latches"):
        check_verilog({"l.v": latch}, "l", cache_dir=tmp_path)


def test_combinational_loop_is_reported(tmp_path):
    loop = ("module c(input x, input y, output a);\n  wire b;\n  assign a = b ^ x;\n"
            "  assign b = a & y;\nendmodule\n")
    with pytest.raises(SynthError, match=r"^c has a combinational loop through cell \$"):
        synth_verilog({"c.v": loop}, "c", cache_dir=tmp_path)


def test_loop_across_modules_is_found_when_composed(tmp_path):
    """Two pass-through modules, each loop-free, wired into a ring by the top."""
    thru = "module thru(input i, input x, output o);\n  assign o = i ^ x;\nendmodule\n"
    s = synth_verilog({"thru.v": thru}, "thru", cache_dir=tmp_path)
    ring = ("module ring(input x, output y);\n  wire a, b;\n  thru u0(.i(b), .x(x), .o(a));\n"
            "  thru u1(.i(a), .x(x), .o(b));\n  assign y = a;\nendmodule\n")
    with pytest.raises(SynthError, match=r"^ring has a combinational loop"):
        compose_netlists([Path(s.netlist)], ring, "ring", cache_dir=tmp_path)


def test_memory_arrays_found_and_kept_as_black_boxes(tmp_path):
    sram = verilog.convert(SramBank(256, 64), name="sram", emit_src=False, strip_internal_attrs=True)
    rom = verilog.convert(RomBank(512, 32), name="rom", emit_src=False, strip_internal_attrs=True)
    (m,) = memories(sram)
    assert (m["rows"], m["width"], m["bits"], m["rom"], m["macro"]) == (256, 64, 16384, False, True)
    (r,) = memories(rom)
    assert (r["rows"], r["width"], r["rom"], r["macro"]) == (512, 32, True, True)
    # a wrapper whose memory is a black box: only the wrapper's own flops remain
    top = ("module top(input clk, input ce, input [7:0] addr, input [1:0] we, input [63:0] d,"
           " output reg [63:0] q);\n  wire [63:0] r;\n"
           "  sram mem(.clk(clk), .rst(1'b0), .ce(ce), .we(we), .addr(addr), .wdata(d),"
           " .rdata(r));\n  always @(posedge clk) q <= r;\nendmodule\n")
    mems = [Memory("sram", 256, 64, False)]
    s = synth_verilog({"sram.v": sram, "top.v": top}, "top", memories=mems, cache_dir=tmp_path)
    assert s.flip_flops == 64 and s.memory_bits == 16384
    assert all("sram" not in t for t in s.cells_by_type)


def _router_flops() -> int:
    """Flip-flops of Router(64) counted from its description (not from Yosys):
    per input a 2-deep FIFO of 65-bit flits (130 storage + produce + consume + 2-bit level),
    `active` and `dropping`; per output a 65-bit flit register, valid, lock, a one-hot
    owner over its legal sources and a round-robin index over them."""
    flops = len(PORTS) * (2 * 65 + 1 + 1 + 2 + 1 + 1)
    for o in PORTS:
        k = len([p for p in PORTS if o in ALLOWED_TURNS[p]])
        flops += 65 + 1 + 1 + k + max(1, (k - 1).bit_length())
    return flops


def test_router_synthesises_and_a_2x2_router_mesh_composes(tmp_path):
    text = verilog.convert(Router(64), name="router", emit_src=False, strip_internal_attrs=True)
    s = synth_verilog({"router.v": text}, "router", cache_dir=tmp_path)
    assert s.latches == 0 and s.flip_flops == _router_flops()

    class Grid(wiring.Component):
        def __init__(self):
            super().__init__({})

        def elaborate(self, platform):
            m = Module()
            nodes = {}
            for r in range(2):
                for c in range(2):
                    iface = Router(64).signature.create(path=(f"r{r}{c}",))
                    ports = [("i", "clk", ClockSignal()), ("i", "rst", ResetSignal())]
                    for path, member, value in iface.signature.flatten(iface):
                        ports.append(("i" if member.flow == wiring.In else "o",
                                      "__".join(map(str, path)), Value.cast(value)))
                    m.submodules[f"r{r}{c}"] = Instance("router", *ports)
                    m.d.comb += [iface.row.eq(r), iface.col.eq(c), iface.l_in.valid.eq(0),
                                 iface.l_out.ready.eq(1)]
                    nodes[r, c] = iface
            connect_grid(m, nodes, 2, 2)
            m.d.comb += [nodes[0, 0].w_in.valid.eq(0), nodes[0, 0].w_out.ready.eq(1)]
            return m

    top = verilog.convert(Grid(), name="grid", emit_src=False, strip_internal_attrs=True, ports=[])
    mesh = compose_netlists([Path(s.netlist)], top, "grid", cache_dir=tmp_path)
    assert mesh.transistors == 4 * s.transistors and mesh.flip_flops == 4 * s.flip_flops


# --- random heterogeneous meshes: emit, lint, synthesise -----------------------------------

WAIVERS = Path(__file__).parents[1] / "hwgen" / "lint_waivers.vlt"

small_tiles = st.builds(
    TileConfig, fetch=st.integers(1, 3), vlen=st.just(128), stations=st.integers(1, 4),
    xdp=st.integers(1, 2), vdp=st.integers(1, 2), xr_wp=st.just(1), vr_wp=st.integers(1, 2),
    dmem_kib=st.just(16), imem_kib=st.sampled_from([1, 2]), wmem_kib=st.sampled_from([0, 16]),
    wmem_kind=st.sampled_from(["rom", "sram"]))


@st.composite
def meshes(draw):
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    classes = tuple(dict.fromkeys(draw(st.lists(small_tiles, min_size=1, max_size=2))))
    grid = [[draw(st.integers(0, len(classes) - 1)) for _ in range(cols)] for _ in range(rows)]
    used = sorted({k for row in grid for k in row})
    grid = tuple(tuple(used.index(k) for k in row) for row in grid)
    return MeshConfig(rows, cols, tuple(classes[k] for k in used), grid,
                      flit_bits=draw(st.sampled_from([64, 128, 256])))


def _lint(files, top, tmp):
    for p, t in files.items():
        (tmp / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp / p).write_text(t)
    return subprocess.run(["verilator", "--lint-only", "-Wall", str(WAIVERS), "-f", "filelist.f",
                           "--top-module", top], cwd=tmp, capture_output=True, text=True)


def _check_random_mesh(mesh, tmp, full):
    design = Design("prop", "7nm", mesh)
    files = render_rtl(design)
    manifest = json.loads(files["manifest.json"])
    assert len(manifest["tile_modules"]) == len(set(mesh.tile_classes))
    if verilator_available():
        r = _lint(files, manifest["top"], tmp)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]
    for e in manifest["tile_modules"]:
        assert all(m["bits"] > SYNTH_MEMORY_MAX_BITS for m in e["memories"])
        used = e["library_instances"]
        src = {f"{e['module']}.v": files[e["file"]]}
        if full:
            s = synth_verilog(src, e["module"], boxes={"b.v": library_stubs(used, comb=False)},
                              check_stubs={"s.v": library_stubs(used, comb=True)})
            assert s.latches == 0 and s.transistors > 0
        else:
            src["s.v"] = library_stubs(used, comb=True)
            assert check_verilog(src, e["module"])["latches"] == 0


@pytest.mark.sim
@settings(max_examples=2, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mesh=meshes())
def test_random_heterogeneous_meshes_emit_lint_and_synthesise(mesh, tmp_path_factory):
    """Verilog generated, Verilator -Wall clean with only hwgen/lint_waivers.vlt, Yosys
    elaboration + flatten + check -assert + coarse synth pass with no latches."""
    _check_random_mesh(mesh, tmp_path_factory.mktemp("prop"), full=False)


@pytest.mark.expensive
@settings(max_examples=6, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mesh=meshes())
def test_random_heterogeneous_meshes_full_synthesis(mesh, tmp_path_factory):
    """As above with the complete flow (synth, abc -g cmos2, stat -tech cmos) per tile."""
    _check_random_mesh(mesh, tmp_path_factory.mktemp("propfull"), full=True)


@pytest.mark.expensive
def test_synth_design_report_and_submesh():
    """The `synth` command's engine on a 2 x 3 heterogeneous design: per-class figures,
    areas from the node's NAND2 area, the composed 2 x 2 window equals its four tiles."""
    a = TileConfig(fetch=1, vlen=128, stations=2, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                   wmem_kib=0)
    b = TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=2, dmem_kib=16, imem_kib=2,
                   wmem_kib=16, wmem_kind="rom")
    design = Design("synth test", "7nm", MeshConfig(2, 3, (a, b), ((0, 1, 0), (1, 0, 0)), 64))
    rep = synth_design(design, jobs=2)
    from explorer.tech import load_node
    nand2 = load_node("7nm").nand2_area_um2
    by_mod = {t["module"]: t for t in rep["tiles"]}
    for t in rep["tiles"]:
        assert t["area"]["logic_um2"] == pytest.approx(t["stats"]["transistors"] / 4 * nand2)
    assert rep["mesh_total"]["transistors"] == sum(t["count"] * t["stats"]["transistors"]
                                                   for t in rep["tiles"])
    window = [[0, 1], [1, 0]]          # the top-left 2 x 2 of the class grid
    expect = sum(by_mod[f"synth_test_tile{k}"]["stats"]["transistors"] for row in window
                 for k in row)
    assert rep["submesh"]["stats"]["transistors"] == expect
    assert by_mod["synth_test_tile1"]["stats"]["memory_bits"] > 0
