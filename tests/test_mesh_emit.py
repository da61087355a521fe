# amaranth: UnusedElaboratable=no
"""Mesh integration (real cores, amaranth.sim), Verilog emission, lint and collateral."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from test_noc import collect_beats, drive_beats, run, split_packets

from explorer.cli import main as cli_main
from explorer.design import Design, MeshConfig, TileConfig
from hwgen.asm import assemble
from hwgen.collateral import collateral, platform_for
from hwgen.emit import host_port_map, port_map, render_rtl, write_tree
from hwgen.iss import TileISS
from hwgen.mesh import Mesh, mesh_signature
from hwgen.noc.packet import Header, Kind, MemSel, mem_read, mem_write, start
from hwgen.tile.tile import tile_signature
from sim.toolchain import verilator_available

SMALL = TileConfig(fetch=1, vlen=128, stations=2, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                   wmem_kib=0)
SMALL2 = TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=2, dmem_kib=16, imem_kib=2,
                    wmem_kib=16, wmem_kind="sram")


# --- the mesh with real cores, driven through the host port only ---------------------------

SENDER = """
    csrr t0, mhartid
    sw t0, 0(zero)
    vld v1, 16(zero)
    li t1, 2
    vsend v1, t1
    ecall
"""
RECEIVER = """
    vrecv v2
    vst v2, 32(zero)
    csrr t0, mhartid
    sw t0, 0(zero)
    ecall
"""


def test_mesh_host_loads_runs_and_reads_back_two_cores():
    """Through the host port of a 2 x 2 heterogeneous mesh: load two programs, START both,
    receive their DONE packets (the sender's cycle count equals the cycle-accurate ISS),
    and read back DMEM: mhartid of each tile, and the vector tile 1 sent to tile 2."""
    mesh = MeshConfig(2, 2, (SMALL, SMALL2), ((0, 0), (1, 0)), flit_bits=64)
    dut = Mesh(mesh)
    rng = random.Random(11)
    vector = [rng.getrandbits(32) for _ in range(4)]
    sender, receiver = assemble(SENDER), assemble(RECEIVER)
    requests = [mem_write((0, 1), MemSel.IMEM, 0, sender),
                mem_write((0, 1), MemSel.DMEM, 4, vector),
                mem_write((1, 0), MemSel.IMEM, 0, receiver),
                start((1, 0)), start((0, 1))]
    reads = [mem_read((1, 0), MemSel.DMEM, 0, 12), mem_read((0, 1), MemSel.DMEM, 0, 1)]
    got = []

    def n_packets():
        return sum(last for _, _, last in got)

    async def host(ctx):
        await drive_beats(ctx, dut.host_in, [b for p in requests for b in p.flits(64)],
                          limit=3000)
        for _ in range(3000):                       # both DONE packets before reading
            if n_packets() >= 2:
                break
            await ctx.tick()
        await drive_beats(ctx, dut.host_in, [b for p in reads for b in p.flits(64)], limit=3000)

    async def sink(ctx):
        await collect_beats(ctx, dut.host_out, got, done=lambda: n_packets() == 4, limit=6000)

    run(dut, host, sink)
    packets = split_packets(got, 64)
    assert len(packets) == 4, packets
    dones = {(p.header.src_row, p.header.src_col): p for p in packets if p.header.kind == Kind.DONE}
    assert set(dones) == {(0, 1), (1, 0)}
    iss = TileISS(SMALL, sender, dmem=b"\0" * 16 + b"".join(w.to_bytes(4, "little") for w in vector),
                  tile_id=1, send=lambda *a: None)
    # ecall waits for an empty tx FIFO. The ISS assumes the NI takes a tx beat one cycle
    # after it appears; this NI takes it when the VEC packet's last flit leaves: one cycle
    # to choose the packet plus one per payload flit later (header_flits + payload flits).
    payload_flits = mesh.packet_flits(SMALL.vlen) - mesh.header_flits
    assert dones[0, 1].words == (iss.run_timed().cycles + 1 + payload_flits,)
    assert dones[1, 0].words[0] > 0
    r10, r01 = [p for p in packets if p.header.kind == Kind.READ_REPLY]
    assert r10.header == Header(Kind.READ_REPLY, dst_host=True, src_row=1, src_col=0,
                                sel=MemSel.DMEM, length=12, addr=0)
    assert r10.words[0] == 2 and r10.words[8:12] == tuple(vector)
    assert r01.words == (1,)


# --- emission -------------------------------------------------------------------------------

DESIGN = Design("Emit test #1", "7nm", MeshConfig(
    2, 3, (SMALL, SMALL2, SMALL), ((0, 1, 2), (1, 0, 1)), flit_bits=64), clock_mhz=570.0)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """The design emitted twice from scratch (the second run fills an empty cache)."""
    root = tmp_path_factory.mktemp("emit")
    mp = pytest.MonkeyPatch()
    mp.setenv("LLM2SILICON_CACHE", str(root / "cache"))
    first = render_rtl(DESIGN, cache=False)
    second = render_rtl(DESIGN, cache=True)
    out = write_tree(root / "out", second)
    yield first, second, out
    mp.undo()


def _modules(text):
    return re.findall(r"^module (\S+?)\s*\(", text, re.M)


def test_one_verilog_module_per_distinct_tile_class(emitted):
    _, files, out = emitted
    manifest = json.loads(files["manifest.json"])
    top = manifest["top"]
    assert top == "emit_test_1"
    tile_modules = sorted(m for p, t in files.items() if p.endswith(".v") for m in _modules(t)
                          if re.fullmatch(rf"{top}_tile\d+", m))
    assert tile_modules == [f"{top}_tile0", f"{top}_tile1"]      # class 2 == class 0: shared
    all_modules = [m for p, t in files.items() if p.endswith(".v") for m in _modules(t)]
    assert len(all_modules) == len(set(all_modules))
    top_text = files[f"rtl/{top}.v"]
    assert _modules(top_text) == [top]
    inst = {name: module for module, name in
            re.findall(r"^\s+(\S+) (tile_r\d+_c\d+) \($", top_text, re.M)}
    expect = {f"tile_r{r}_c{c}": f"{top}_tile{[0, 1, 0][DESIGN.mesh.class_grid[r][c]]}"
              for r in range(2) for c in range(3)}
    assert inst == expect
    assert {t["instance"]: t["module"] for t in manifest["tiles"]} == expect
    assert [(t["row"], t["col"], t["id"]) for t in manifest["tiles"]] == [
        (r, c, 3 * r + c) for r in range(2) for c in range(3)]
    assert [t["count"] for t in manifest["tile_modules"]] == [3, 3]


def test_reemission_is_byte_identical_and_hashed(emitted):
    first, second, out = emitted
    assert first == second
    manifest = json.loads(second["manifest.json"])
    for path, digest in manifest["files"].items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
    assert (out / "filelist.f").read_text().split() == manifest["filelist"]


def test_port_names_in_manifest_are_the_verilog_ports(emitted):
    _, files, _ = emitted
    manifest = json.loads(files["manifest.json"])

    def header_ports(text, module):
        m = re.search(rf"^module {re.escape(module)}\((.*?)\);", text, re.M | re.S)
        return sorted(p.strip() for p in m.group(1).split(","))

    top = manifest["top"]
    assert header_ports(files[f"rtl/{top}.v"], top) == sorted(
        p["name"] for p in port_map(mesh_signature(64)))
    hp = host_port_map(64)
    assert {hp["host_in"]["payload"], hp["host_out"]["valid"]} <= set(
        header_ports(files[f"rtl/{top}.v"], top))
    tile = manifest["tile_modules"][1]
    assert header_ports(files[tile["file"]], tile["module"]) == sorted(
        p["name"] for p in port_map(tile_signature(64)))
    assert manifest["host_port"] == hp and hp["payload_bits"] == 65


@pytest.mark.sim
@pytest.mark.skipif(not verilator_available(), reason="Verilator not installed")
def test_emitted_mesh_lints_clean_with_the_one_waiver_file(emitted):
    _, _, out = emitted
    waivers = Path(__file__).parents[1] / "hwgen" / "lint_waivers.vlt"
    r = subprocess.run(["verilator", "--lint-only", "-Wall", str(waivers), "-f", "filelist.f",
                        "--top-module", "emit_test_1"], cwd=out, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


def test_write_tree_never_half_overwrites(tmp_path):
    out = write_tree(tmp_path / "o", {"rtl/a.v": "old a", "manifest.json": "{}", "keep.txt": "k"})

    with pytest.raises(TypeError):
        write_tree(out, {"rtl/a.v": "new a", "rtl/b.v": 42, "manifest.json": "new"})
    assert (out / "rtl/a.v").read_text() == "old a" and not (out / "rtl/b.v").exists()
    assert (out / "manifest.json").read_text() == "{}"
    write_tree(out, {"rtl/b.v": "b", "manifest.json": "new"})
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "manifest.json", "rtl"]
    assert [p.name for p in (out / "rtl").iterdir()] == ["b.v"]        # rtl/ swapped whole


# --- collateral -----------------------------------------------------------------------------


def _make_vars(text, design_dir):
    """Expand config.mk with GNU make itself (DESIGN_DIR set after the include, as ORFS does)."""
    mk = design_dir / "probe.mk"
    mk.write_text("include config.mk\nDESIGN_DIR = " + str(design_dir) + "\n"
                  "$(foreach v,DESIGN_NAME DESIGN_NICKNAME PLATFORM VERILOG_FILES SDC_FILE "
                  "CORE_UTILIZATION PLACE_DENSITY SYNTH_HIERARCHICAL,"
                  "$(info $(v)=$(strip $($(v)))))\nall: ;\n")
    r = subprocess.run(["make", "-s", "-f", "probe.mk"], cwd=design_dir, capture_output=True,
                       text=True, check=True)
    return dict(line.split("=", 1) for line in r.stdout.splitlines())


@pytest.mark.parametrize("node, clock_mhz, platform, period", [
    ("7nm", 570.0, "asap7", "1754.386"), ("3nm", 1000.0, "asap7", "1000"),
    ("28nm", 250.0, "nangate45", "4"), ("10nm", 520.0, "nangate45", "1.923")])
def test_collateral_files_parse(emitted, tmp_path, node, clock_mhz, platform, period):
    _, files, out = emitted
    design = DESIGN.with_(node=node, clock_mhz=clock_mhz)
    manifest = json.loads(files["manifest.json"])
    coll = collateral(design, manifest)
    write_tree(tmp_path, {**{p: t for p, t in files.items()}, **coll})
    (lines,) = [ln for ln in coll["constraints.sdc"].splitlines() if ln.startswith("set clk_period")]
    assert lines.split() == ["set", "clk_period", period]
    assert platform_for(node).name == platform
    v = _make_vars(coll["config.mk"], tmp_path)
    assert v["DESIGN_NAME"] == "emit_test_1" and v["PLATFORM"] == platform
    assert v["VERILOG_FILES"].split() == [str(tmp_path / p) for p in manifest["filelist"]]
    assert all(Path(p).exists() for p in v["VERILOG_FILES"].split())
    assert v["SDC_FILE"] == str(tmp_path / "constraints.sdc")
    assert v["SYNTH_HIERARCHICAL"] == "1" and 0 < float(v["CORE_UTILIZATION"]) < 100
    assert float(v["CORE_UTILIZATION"]) / 100 < float(v["PLACE_DENSITY"]) <= 1
    assert "fakeram" in coll["config.mk"] and "SYNTH_MEMORY_MAX_BITS" in coll["config.mk"]
    core = yaml.safe_load(coll["emit_test_1.core"])
    assert set(core["filesets"]) == {"rtl", "lint_waivers", "orfs"}
    assert core["filesets"]["rtl"]["files"] == manifest["filelist"]
    assert set(core["targets"]) == {"default", "lint", "synth"}
    assert core["targets"]["lint"]["toplevel"] == "emit_test_1"
    assert core["targets"]["lint"]["flow_options"]["tool"] == "verilator"


def test_cli_generate_writes_everything_and_rejects_bad_input(emitted, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "name": "x", "node": "7nm", "mesh": {"rows": 0}}')
    assert cli_main(["generate", "--design", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    good = tmp_path / "d.json"
    good.write_text(DESIGN.to_json())
    assert cli_main(["generate", "--design", str(good), "--out", str(tmp_path / "o"),
                     "--json"]) == 0                       # tiles come from the cache
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["files"]) >= {"README.md", "config.mk", "constraints.sdc", "filelist.f",
                                     "manifest.json", "emit_test_1.core", "orfs.mk",
                                     "lint_waivers.vlt", "rtl/emit_test_1.v",
                                     "rtl/emit_test_1_tile0.v", "rtl/emit_test_1_tile1.v"}
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".hwgen")]


def _connectivity(top_text, top, stubs, tmp):
    """Every input bit of every instance and every top output bit -> what drives it
    (a top input bit, an instance output bit or a constant), read back by Yosys."""
    from hwgen.synth import yosys_command
    (tmp / "top.v").write_text(top_text)
    (tmp / "stubs.v").write_text(stubs)
    (tmp / "s.ys").write_text(f"read_verilog -lib stubs.v\nread_verilog top.v\n"
                              f"hierarchy -top {top}\nproc\nopt_clean -purge\n"
                              f"write_json net.json\n")
    subprocess.run([*yosys_command(), "-q", "s.ys"], cwd=tmp, check=True, capture_output=True)
    mod = json.loads((tmp / "net.json").read_text())["modules"][top]
    driver = {}
    for name, port in mod["ports"].items():
        if port["direction"] == "input":
            for i, b in enumerate(port["bits"]):
                driver[b] = ("top", name, i)
    for cname, cell in mod["cells"].items():
        for pname, bits in cell["connections"].items():
            if cell["port_directions"][pname] == "output":
                for i, b in enumerate(bits):
                    driver[b] = (cname, pname, i)
    graph = {}
    for cname, cell in mod["cells"].items():
        graph[cname] = cell["type"]
        for pname, bits in cell["connections"].items():
            if cell["port_directions"][pname] == "input":
                for i, b in enumerate(bits):
                    graph[cname, pname, i] = driver.get(b, b)
    for name, port in mod["ports"].items():
        if port["direction"] == "output":
            for i, b in enumerate(port["bits"]):
                graph["top", name, i] = driver.get(b, b)
    return graph


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (3, 2)])
def test_structural_top_wires_like_the_amaranth_mesh(tmp_path, rows, cols):
    """The emitted top (written directly) connects every bit exactly as Amaranth's
    conversion of Mesh(..., tile_modules=...) does."""
    from amaranth.back import verilog

    from hwgen.emit import mesh_top_verilog
    grid = tuple(tuple((r + c) % 2 if cols > 1 else 0 for c in range(cols)) for r in range(rows))
    classes = (SMALL, SMALL2) if cols > 1 else (SMALL,)
    mesh = MeshConfig(rows, cols, classes, grid, flit_bits=64)
    names = {cfg: f"t_tile{k}" for k, cfg in enumerate(classes)}
    ports = port_map(tile_signature(64))
    stub_ports = ", ".join(p["direction"] + (f" [{p['bits'] - 1}:0] " if p["bits"] > 1 else " ")
                           + p["name"] for p in ports)
    stubs = "".join(f"module {n}({stub_ports});\nendmodule\n" for n in names.values())
    ours = mesh_top_verilog(mesh, "t", names)
    amaranth = verilog.convert(Mesh(mesh, tile_modules=names), name="t", emit_src=False,
                               strip_internal_attrs=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _connectivity(ours, "t", stubs, tmp_path / "a")
    b = _connectivity(amaranth, "t", stubs, tmp_path / "b")
    assert a == b
    assert len([k for k in a if isinstance(k, str)]) == rows * cols
