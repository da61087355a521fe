"""Kernel compiler: every op kind compiles, runs on the ISS and matches float64 numpy."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.design import TileConfig
from explorer.ppa.ewpass import OP_UNITS, PASSES
from explorer.ppa.ewtable import pass_schedule
from explorer.ppa.kernels import B_DMEM, B_NET
from explorer.workloads.graph import Op
from hwgen.asm import disassemble
from hwgen.isa import BY_NAME
from sim.compiler import compile_op, run_program
from sim.compiler.layout import Blocked, b_operand_rows
from sim.fidelity_iss import result_values
from sim.golden_ops import check, reference

T_SMALL = TileConfig(fetch=2, vlen=128, stations=8, xdp=1, vdp=2, dmem_kib=64, imem_kib=2,
                     wmem_kib=64)
T_WIDE = TileConfig(fetch=4, vlen=256, stations=8, xdp=2, vdp=3, xr_wp=2, vr_wp=2,
                    dmem_kib=64, imem_kib=4, wmem_kib=64)

CASES = {
    "gemv": Op("gemv", "matmul", "decoder", 0, m=1, k=96, n=24),
    "gemm": Op("gemm", "matmul", "decoder", 0, batch=2, m=3, k=64, n=40),
    "attn_qk": Op("qk", "attn_qk", "decoder", 0, batch=4, m=1, k=32, n=48),
    "attn_av": Op("av", "attn_av", "decoder", 0, batch=4, m=2, k=40, n=32),
    "softmax": Op("sm", "softmax", "decoder", 0, elems=3 * 72, n=72),
    "rmsnorm": Op("rms", "rmsnorm", "decoder", 0, elems=2 * 96, n=96),
    "layernorm": Op("ln", "layernorm", "decoder", 0, elems=2 * 64, n=64),
    "rope": Op("rope", "rope", "decoder", 0, elems=96, n=32),
    "silu_mul": Op("silu", "silu_mul", "decoder", 0, elems=200),
    "gelu": Op("gelu", "gelu", "decoder", 0, elems=200),
    "add": Op("add", "add", "decoder", 0, elems=300),
    "embed": Op("emb", "embed", "decoder", 0, batch=1, m=3, k=20, n=40),
    "reshape": Op("rs", "reshape", "decoder", 0, elems=136),
}


def _run_and_check(op, tile, **kw):
    prog = compile_op(op, tile, rng=np.random.default_rng(7), **kw)
    out = run_program(prog)
    got = result_values(prog, out)
    ratio = check(op.kind, got, reference(op.kind, dict(prog.inputs), dict(prog.meta)), dict(prog.inputs))
    return prog, out, ratio


@pytest.mark.parametrize("tile", [T_SMALL, T_WIDE], ids=["v128", "v256"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kind_runs_within_tolerance_of_numpy(case, tile):
    op = CASES[case]
    share = 2 if op.kind.startswith("attn") else 1
    prog, out, ratio = _run_and_check(op, tile, share=share)
    assert ratio <= 1.0, f"{case}: error {ratio:.2f} x the bound"
    # The executed mix is the one the compiler planned (loop trip counts included).
    assert out.unit_counts == dict(prog.expected_counts)
    assert out.cycles > 0 and len(prog.words) <= tile.imem_words


def test_bit_exact_repeatability():
    op = CASES["softmax"]
    a = compile_op(op, T_SMALL, rng=np.random.default_rng(3))
    b = compile_op(op, T_SMALL, rng=np.random.default_rng(3))
    assert a.words == b.words and a.dmem == b.dmem and a.wmem == b.wmem
    ra, rb = run_program(a), run_program(b)
    assert ra.cycles == rb.cycles
    assert all(np.array_equal(ra.outputs[k], rb.outputs[k]) for k in ra.outputs)
    # The untimed functional run gives the same bits as the timed one.
    rf = run_program(a, timed=False)
    assert all(np.array_equal(ra.outputs[k], rf.outputs[k]) for k in ra.outputs)


@pytest.mark.parametrize("source", [B_DMEM, B_NET], ids=["dmem", "net"])
def test_matmul_with_streamed_weights(source):
    op = Op("mm", "matmul", "decoder", 0, m=5, k=48, n=24)
    prog, out, ratio = _run_and_check(op, T_SMALL, b_source=source)
    assert ratio <= 1.0
    text = "\n".join(disassemble(prog.words))
    assert ("vrecv" in text) == (source == B_NET) and "vmacw" not in text


def test_int8_matmul_is_exact():
    op = Op("q", "matmul", "decoder", 0, dtype="int8", m=3, k=64, n=32)
    prog = compile_op(op, T_SMALL, rng=np.random.default_rng(1))
    out = run_program(prog)
    x, b = prog.inputs["x"][0].astype(np.int64), prog.inputs["b"][0].astype(np.int64)
    acc = ((x @ b + 2**31) % 2**32 - 2**31) >> prog.meta["int8_shift"]
    assert np.array_equal(out.outputs["y0"], np.clip(acc, -128, 127).astype(np.int8))


def test_gemv_loop_is_the_models():
    # One vld + L vmacw per block; VMAC also runs wset + vzero once per row group and
    # vcvt + vzero after each of the two column chunks.
    op = Op("g", "matmul", "decoder", 0, m=1, k=256, n=16)
    prog = compile_op(op, T_SMALL, rng=np.random.default_rng(0))
    L = T_SMALL.lanes_fp16
    assert prog.expected_counts["VMAC"] == 2 * 256 + 2 + 2 * 2
    assert prog.loops["blocks"] == 256 // L and prog.loops["u_R1"] % 2 == 0


def test_layouts_round_trip():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 1000, (6, 20)).astype(np.uint16)
    lay = Blocked(6, 20, 8, 16, 4)
    assert np.array_equal(lay.unpack(lay.pack(m)), m)
    # Group 1 holds 2 rows: row 5, block 1 sits at group base + (1 * 2 + 1) vectors.
    assert lay.vector_offset(5, 1) == lay.group_base(1) + 3 * 16
    rows = b_operand_rows(m[:, :12], 8, 8)
    assert rows.shape == (2 * 8, 8) and np.array_equal(rows[8 + 2, :4], m[2, 8:12])


def test_template_units_and_latencies_are_the_isa_s():
    for mnemonic, (unit, latency, writes_v) in OP_UNITS.items():
        spec = BY_NAME[mnemonic]
        assert spec.unit.name == unit
        if latency:
            assert getattr(T_SMALL, spec.latency_attr) == latency
        assert (spec.dst is not None and spec.dst[0].name == "V") == writes_v


@pytest.mark.parametrize("tile", [T_SMALL, T_WIDE], ids=["v128", "v256"])
def test_pass_schedules_respect_the_issue_limits(tile):
    vi, wp = tile.vector_issue_per_cycle, tile.vr_wp
    for kind, passes in PASSES.items():
        for i, p in enumerate(passes):
            s = pass_schedule(kind, i, vi, wp)
            ops = p.templates[s.variant]
            assert s.ii >= max(len(ops) / vi, sum(o.writes_v for o in ops) / wp), (kind, i)
            # Per steady-state cycle: at most vi vector ops, one per unit, wp v writes.
            issue, writes = {}, {}
            for sub in range(s.blocks):
                for o, t in zip(ops, s.times[sub], strict=True):
                    issue.setdefault(t % s.cycles, []).append(o.unit)
                    if o.writes_v:
                        w = (t + o.latency - 1) % s.cycles
                        writes[w] = writes.get(w, 0) + 1
            assert all(len(u) <= vi and len(set(u)) == len(u) for u in issue.values()), (kind, i)
            assert all(n <= wp for n in writes.values()), (kind, i)
            assert {r for rs in s.regs.values() for r in rs} <= set(range(p.regs)), (kind, i)
            assert s.period % s.blocks == 0


@pytest.mark.parametrize("op,match", [
    (Op("c", "attn_qk", "decoder", 0, batch=1, m=2, k=8, n=8, causal=True), r"^causal attention"),
    (Op("l", "layernorm", "decoder", 0, elems=20, n=20), r"^layernorm rows of 20 must be a multiple of 8 lanes$"),
    (Op("i", "gelu", "decoder", 0, dtype="int8", elems=16), r"^gelu is compiled for fp16 only"),
])
def test_unsupported_ops_raise(op, match):
    with pytest.raises(ValueError, match=match):
        compile_op(op, T_SMALL)


def test_tile_index_is_validated():
    with pytest.raises(ValueError, match=r"^tile_index must be between 0 and 1, not 2$"):
        compile_op(CASES["add"], T_SMALL, n_tiles=2, tile_index=2)


def test_network_flight_and_injection_rate_follow_the_contract():
    # Tile 0 sends three vectors to its east neighbour, which stamps the cycle of each
    # vrecv. First: vsend in cycle c, the NI takes the tx FIFO head in c+1 and sends the
    # header in c+2; hop_cycles per router passed (2 routers), then the other flits;
    # the vector is written with the last flit and popped the cycle after. Then one
    # packet every packet_flits + 1 cycles (the NI idles a cycle between packets).
    from explorer import contract as C
    from hwgen.asm import assemble
    from hwgen.iss import TileISS
    from sim.network import MeshNetwork
    t = T_SMALL
    send = assemble("li a0, 1\n" + "vsend v0, a0\n" * 3 + "ecall\n", t)
    recv = assemble("".join(f"vrecv v1\ncsrr t0, cycle\nsw t0, {4 * k}(zero)\n" for k in range(3))
                    + "ecall\n", t)
    tiles = [TileISS(t, send), TileISS(t, recv, tile_id=1)]
    run = MeshNetwork(tiles, 1, 2, flit_bits=64).run(1000)
    stamps = [int.from_bytes(bytes(tiles[1].dmem[4 * k:4 * k + 4]), "little") for k in range(3)]
    flits = C.packet_flits(t.vlen, 64)
    first_send = 3                          # li issues in cycle 2, vsend waits for a0
    first = first_send + 2 + C.HOP_CYCLES * 2 + flits
    assert stamps[0] == first               # csrr issues in the vrecv's group
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [flits + 1] * 2
    assert run.packets == 3 and run.cycles == max(r.cycles for r in run.results)


@pytest.mark.parametrize("rows,cols", [(2, 2), (2, 3), (3, 2), (4, 4), (3, 4)])
def test_ring_all_gather_steps_are_one_hop(rows, cols):
    from sim.compiler.multitile import ring_order
    ring = ring_order(rows, cols)
    assert sorted(ring) == list(range(rows * cols))
    pos = [divmod(t, cols) for t in ring]
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(pos, pos[1:] + pos[:1], strict=True))


def test_stored_schedules_are_current_and_reproducible():
    # The model and the compiler read explorer/ppa/ewpass_table.json; it must match the
    # templates and the search (python -m explorer.ppa.modsched rewrites it).
    import json

    from explorer.ppa.ewtable import TABLE_PATH, _stored, compute_schedule, table_digest
    meta = json.loads(TABLE_PATH.read_text())["_meta"]
    assert meta["digest"] == table_digest(), "stale table: run python -m explorer.ppa.modsched"
    stored = _stored()
    for key in ("add/0/1/1", "softmax/0/2/1", "rmsnorm/1/2/2", "layernorm/1/3/1"):
        kind, idx, vi, wp = key.split("/")
        assert compute_schedule(kind, int(idx), int(vi), int(wp)) == stored[key], key
