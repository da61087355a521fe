"""The tile core RTL (amaranth.sim) against the cycle-accurate ISS: results and cycles.

One simulator per TileConfig runs the whole program suite of ``tile_programs.py``
through the core's own ``mem``/``ctrl`` ports (as the network interface would); each
test then compares one program's architectural state (x/v/acc registers, DMEM region)
bit for bit and its cycle count with :meth:`hwgen.iss.TileISS.run_timed`.
"""

# amaranth: UnusedElaboratable=no

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from tile_programs import REGION_BYTES, random_program, suite, wmem_rows_fp16

from explorer.design import TileConfig
from hwgen.asm import assemble
from hwgen.iss import LOOPBACK_LATENCY, TileISS
from hwgen.tile import Core
from hwgen.tile import testbench as tb
from sim.toolchain import verilator_available

CONFIGS = [
    TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=2, dmem_kib=16, imem_kib=1, wmem_kib=16),
    TileConfig(fetch=4, vlen=256, stations=8, xdp=2, vdp=2, xr_wp=2, vr_wp=2, dmem_kib=16,
               imem_kib=2, wmem_kib=32, wmem_kind="sram"),
    TileConfig(fetch=1, vlen=128, stations=2, xdp=1, vdp=1, dmem_kib=16, imem_kib=1, wmem_kib=16),
    TileConfig(fetch=3, vlen=128, stations=5, xdp=2, vdp=1, xr_wp=1, dmem_kib=32, imem_kib=1,
               wmem_kib=16),
]
WMEM_ROWS = 64
TILE_ID = 3            # vsend dest in the loopback program (the loopback ignores it)
HOST_PROBES = [(tb.MemSel.IMEM, 4 * 200, 0xDEADBEEF), (tb.MemSel.DMEM, REGION_BYTES + 8, 0x1234),
               (tb.MemSel.WMEM, 4, 0x0BADF00D)]


class LoopbackTop(wiring.Component):
    """The core with tx looped into rx through a small FIFO (always ready while not full)."""

    def __init__(self, core: Core):
        self.core = core
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.loop = fifo = SyncFIFO(width=core.tile.vlen, depth=8)
        m.d.comb += [fifo.w_en.eq(core.tx.valid), fifo.w_data.eq(core.tx.payload.data),
                     core.tx.ready.eq(fifo.w_rdy), core.rx.valid.eq(fifo.r_rdy),
                     core.rx.payload.eq(fifo.r_data), fifo.r_en.eq(core.rx.ready)]
        return m


def _wmem(tile) -> list[int]:
    rows = wmem_rows_fp16(tile, np.random.default_rng(7), WMEM_ROWS)
    return tb.bytes_to_rows(rows.tobytes(), tile.vlen)


def run_suite_rtl(tile, programs=None) -> dict[str, dict]:
    """Run the programs (default: the suite) on one simulated core; state before/after."""
    wmem = _wmem(tile)
    core = Core(tile, wmem_init=wmem if tile.wmem_kind == "rom" else None)
    top = LoopbackTop(core)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    programs = suite(tile) if programs is None else programs
    out: dict[str, dict] = {}
    sent: list[int] = []

    async def tx_monitor(ctx):
        async for _, _, valid, ready, dest in ctx.tick().sample(
                core.tx.valid, core.tx.ready, core.tx.payload.dest):
            if valid and ready:
                sent.append(int(dest))

    async def bench(ctx):
        ctx.set(core.tile_id, TILE_ID)
        if tile.wmem_kind == "sram":
            await tb.load_bytes(ctx, core, tb.MemSel.WMEM, 0, tb.rows_to_bytes(wmem, tile.vlen))
        for prog in programs:
            words = assemble(prog.source, tile)
            await tb.load_words(ctx, core, tb.MemSel.IMEM, 0, words)
            if prog.dmem:
                await tb.load_bytes(ctx, core, tb.MemSel.DMEM, 0, prog.dmem)
            before = tb.read_state(ctx, core)
            cycles = await tb.run(ctx, core)
            out[prog.name] = {"program": prog, "words": words, "before": before,
                              "cycles": cycles, "after": tb.read_state(ctx, core),
                              "dmem": await tb.read_bytes(ctx, core, tb.MemSel.DMEM, 0,
                                                          REGION_BYTES), "sent": list(sent)}
            sent.clear()
        # host port: write then read back each memory (a ROM WMEM ignores the write)
        probes = []
        for sel, addr, word in HOST_PROBES:
            before = await tb.mem_read(ctx, core, sel, addr)
            await tb.mem_write(ctx, core, sel, addr, word)
            probes.append((before, await tb.mem_read(ctx, core, sel, addr)))
        out["host"] = probes

    sim.add_process(tx_monitor)
    sim.add_testbench(bench)
    sim.run()
    return out


def run_iss(tile, result: dict) -> TileISS:
    """The program of ``result`` on the timed ISS, started from the RTL's register state."""
    prog = result["program"]
    iss = TileISS(tile, result["words"], dmem=prog.dmem,
                  wmem=tb.rows_to_bytes(_wmem(tile), tile.vlen), tile_id=TILE_ID)
    x, v, acc = result["before"]
    iss.x, iss.v[:], iss.acc[:] = list(x), v, acc
    iss.sent = []

    def loop_back(dest, vector, cycle):       # the RTL test bench loops tx into rx
        iss.sent.append(dest)
        iss.rx.append((cycle + LOOPBACK_LATENCY, vector))

    iss.send = loop_back
    iss.run_timed(max_cycles=10_000)
    return iss


def mismatches(tile, name: str, r: dict) -> list[str]:
    """What differs between the RTL run ``r`` of program ``name`` and the timed ISS."""
    iss = run_iss(tile, r)
    x, v, acc = r["after"]
    cycles = iss.result().cycles
    checks = [("x registers", x == iss.x), ("v registers", np.array_equal(v, iss.v)),
              ("accumulators", np.array_equal(acc, iss.acc)),
              ("DMEM", r["dmem"] == iss.dmem[:REGION_BYTES].tobytes()),
              (f"cycles (rtl {r['cycles']}, iss {cycles})", r["cycles"] == cycles),
              (f"vsend destinations (rtl {r['sent']}, iss {iss.sent})", r["sent"] == iss.sent)]
    return [f"{name}: {what} differ" for what, same in checks if not same]


# One test per TileConfig runs the simulator once (the expensive part) and checks every
# program, so pytest-xdist never simulates a configuration twice.
@pytest.mark.parametrize("tile", CONFIGS, ids=str)
def test_core_matches_iss(tile):
    results = run_suite_rtl(tile)
    problems = [msg for name, r in results.items() if name != "host"
                for msg in mismatches(tile, name, r)]
    assert not problems, "\n".join(problems)

    # hand-computed cycle facts of the contract
    burst = results["vmacw_burst16"]["cycles"] - results["vmacw_burst8"]["cycles"]
    assert burst == 8, "eight more back-to-back vmacw.h must cost exactly eight cycles"
    per_iter = results["branch_loop4"]["cycles"] - results["branch_loop3"]["cycles"]
    # addi + taken bnez: two issue cycles (RAW on t0) plus the redirect bubble
    assert per_iter == 2 + tile.branch_penalty_cycles

    # host port: written words read back; a ROM WMEM ignores the write
    wmem_word1 = _wmem(tile)[0] >> 32 & 0xFFFFFFFF
    (_, imem), (_, dmem), (w_before, w_after) = results["host"]
    assert imem == 0xDEADBEEF and dmem == 0x1234
    assert w_before == wmem_word1
    assert w_after == (wmem_word1 if tile.wmem_kind == "rom" else 0x0BADF00D)


@pytest.mark.expensive
@settings(max_examples=4, deadline=None, phases=[Phase.generate])
@given(tile=st.builds(
    TileConfig, fetch=st.integers(1, 6), vlen=st.sampled_from([128, 256]),
    stations=st.integers(1, 10), xdp=st.integers(1, 3), vdp=st.integers(1, 4),
    xr_wp=st.integers(1, 3), vr_wp=st.integers(1, 3), dmem_kib=st.just(16),
    imem_kib=st.just(1), wmem_kib=st.just(32), wmem_kind=st.just("rom")),
    seed=st.integers(0, 2**32 - 1))
def test_random_programs_on_random_tiles(tile, seed):
    """Random TileConfigs x random straight-line programs: RTL == timed ISS."""
    rng = np.random.default_rng(seed)
    programs = [random_program(tile, rng, i, n=60) for i in range(6)]
    results = run_suite_rtl(tile, programs)
    problems = [msg for name, r in results.items() if name != "host"
                for msg in mismatches(tile, name, r)]
    assert not problems, "\n".join(problems)


def test_mismatch_is_reported():
    """The comparison is not vacuous: a wrong cycle count or register is caught."""
    tile = CONFIGS[0]
    prog = suite(tile)[0]
    words = assemble(prog.source, tile)
    zero = ([0] * 32, np.zeros((tile.vregs, tile.vlen // 8), np.uint8),
            np.zeros((tile.accs, tile.lanes_int8), np.uint32))
    good = run_iss(tile, {"program": prog, "words": words, "before": zero})
    x = list(good.x)
    r = {"program": prog, "words": words, "before": zero, "cycles": good.result().cycles + 1,
         "after": (x, good.v.copy(), good.acc.copy()), "sent": [],
         "dmem": good.dmem[:REGION_BYTES].tobytes()}
    assert mismatches(tile, "p", r) == [
        f"p: cycles (rtl {r['cycles']}, iss {r['cycles'] - 1}) differ"]
    x[5] ^= 1
    assert mismatches(tile, "p", dict(r, cycles=r["cycles"] - 1)) == ["p: x registers differ"]


# --- Verilog: conversion and lint ------------------------------------------------------
# Amaranth's output always trips PROCASSINIT/UNUSEDSIGNAL/DECLFILENAME (toolchain.md §4),
# and Yosys' Verilog writer prints constants at their minimal width (`x == 15'h4013` with
# a 32-bit x), which -Wall reports as WIDTHEXPAND/WIDTHTRUNC although Verilog's extension
# rules make them exact. Every other warning (latches, loops, incomplete cases, constant
# comparisons, ...) fails the test.
LINT_WAIVERS = ["-Wno-PROCASSINIT", "-Wno-UNUSEDSIGNAL", "-Wno-DECLFILENAME",
                "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
needs_verilator = pytest.mark.skipif(not verilator_available(), reason="Verilator not installed")


def lint(tile, tmp_path) -> subprocess.CompletedProcess:
    text = verilog.convert(Core(tile), emit_src=False, name="tile_core")
    path = tmp_path / f"{tile}.v"
    path.write_text(text)
    return subprocess.run(["verilator", "--lint-only", "-Wall", *LINT_WAIVERS,
                           "--top-module", "tile_core", str(path)],
                          capture_output=True, text=True)


tile_configs = st.builds(
    TileConfig, fetch=st.integers(1, 5), vlen=st.just(128), stations=st.integers(1, 8),
    xdp=st.integers(1, 3), vdp=st.integers(1, 4), xr_wp=st.integers(1, 3),
    vr_wp=st.integers(1, 3), dmem_kib=st.sampled_from([16, 32]), imem_kib=st.sampled_from([1, 2]),
    wmem_kib=st.sampled_from([0, 16, 48]), wmem_kind=st.sampled_from(["rom", "sram"]))


@pytest.mark.sim
@needs_verilator
def test_smallest_tile_lints_clean(tmp_path):
    """One issue slot, one queue entry, one IMEM bank, no WMEM: every width at its minimum."""
    tile = TileConfig(fetch=1, vlen=128, stations=1, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                      wmem_kib=0)
    result = lint(tile, tmp_path)
    assert result.returncode == 0 and "%Warning" not in result.stderr, result.stderr[-3000:]


@pytest.mark.sim
@needs_verilator
@settings(max_examples=2, deadline=None, phases=[Phase.generate])
@given(tile=tile_configs)
def test_random_tile_configs_convert_and_lint(tile, tmp_path_factory):
    result = lint(tile, tmp_path_factory.mktemp("lint"))
    assert result.returncode == 0 and "%Warning" not in result.stderr, result.stderr[-3000:]
