"""The instruction-set simulator: RV32I semantics, vector ops against numpy, cycle model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tile_programs import random_program

from explorer.design import TileConfig
from hwgen import golden as g
from hwgen.asm import assemble
from hwgen.iss import IssError, Network, TileISS

T = TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=2, dmem_kib=16, imem_kib=1, wmem_kib=16)
ROW = T.vlen // 8


def run(src: str, tile=T, timed=False, **kw) -> TileISS:
    iss = TileISS(tile, assemble(src, tile), **kw)
    (iss.run_timed if timed else iss.run)()
    return iss


def test_rv32i_arithmetic_by_hand():
    iss = run("""
        li a0, -7
        li a1, 3
        add a2, a0, a1        # -4
        sub a3, a0, a1        # -10
        slt a4, a0, a1        # 1 (signed)
        sltu a5, a0, a1       # 0 (0xfffffff9 > 3 unsigned)
        srai a6, a0, 1        # -4 (floor)
        srli a7, a0, 28       # 0xf
        sll t0, a1, a1        # 24
        xori t1, a1, -1       # ~3
        andi t2, a0, 0xff     # 0xf9
        or t3, a1, a0         # -5 | 3 = -5 ... 0xfffffffb
        lui t4, 0xfffff       # 0xfffff000
        auipc t5, 1           # pc(13*4) + 4096
        sltiu t6, zero, 1     # 1 (seqz)
        ecall
    """)
    x = iss.x
    assert [x[12], x[13], x[14], x[15], x[16], x[17]] == [
        (-4) & 0xFFFFFFFF, (-10) & 0xFFFFFFFF, 1, 0, (-4) & 0xFFFFFFFF, 0xF]
    assert [x[5], x[6], x[7], x[28], x[29], x[30], x[31]] == [
        24, 0xFFFFFFFC, 0xF9, 0xFFFFFFFB, 0xFFFFF000, 13 * 4 + 4096, 1]
    assert x[0] == 0


def test_branches_jumps_and_memory():
    iss = run("""
        li t0, 0            # i
        li t1, 0            # sum of i*i for i < 6, kept in DMEM[64]
    loop:
        mul_by_add:
        mv t2, zero
        mv t3, t0
    inner:                  # t2 = t0 * t0 by repeated addition
        beqz t3, done_mul
        add t2, t2, t0
        addi t3, t3, -1
        j inner
    done_mul:
        lw t4, 64(zero)
        add t4, t4, t2
        sw t4, 64(zero)
        addi t0, t0, 1
        li t5, 6
        blt t0, t5, loop
        jal ra, sub
        ecall
    sub:
        li s0, 77
        jalr zero, 0(ra)
    """)
    assert int(iss.dmem[64:68].view("<u4")[0]) == sum(i * i for i in range(6))
    assert iss.x[8] == 77 and iss.x[1] == 4 * 15      # ra = address after jal (word 14)


def test_unsigned_and_signed_branches():
    iss = run("""
        li a0, -1
        li a1, 1
        li s0, 0
        bltu a1, a0, 8       # 1 < 0xffffffff unsigned: skip next
        addi s0, s0, 1
        bge a1, a0, 8        # 1 >= -1 signed: skip next
        addi s0, s0, 2
        bgeu a1, a0, 8       # not taken
        addi s0, s0, 4
        ecall
    """)
    assert iss.x[8] == 4


def test_csr_reads():
    iss = run("csrr a0, mhartid\nnop\ncsrr a1, cycle\necall", tile_id=5)
    assert iss.x[10] == 5 and iss.x[11] == 2          # untimed: instructions so far
    iss = run("csrr a0, mhartid\nnop\ncsrr a1, cycle\necall", timed=True, tile_id=5)
    assert iss.x[11] == 4                             # issue cycles 2, 3, 4


def _vec(values) -> bytes:
    return np.asarray(values).tobytes()


def test_gemv_vmacw_against_numpy():
    """y = W x over 8 WMEM rows: FP32 accumulation within float64-based tolerance."""
    rng = np.random.default_rng(3)
    n = T.lanes_fp16
    w = g.fp16_bits(rng.normal(0, 1, (n, n)))          # row k = column k of W^T
    xv = g.fp16_bits(rng.normal(0, 1, n))
    macs = "\n".join(f"vmacw.h acc0, v1, {k}" for k in range(n))
    iss = run(f"""
        wset zero
        vld v1, 0(zero)
        vzero acc0
        {macs}
        vred.h a0, acc0
        vcvt.h v2, acc0
        ecall
    """, dmem=_vec(xv), wmem=_vec(w))
    ref = g.fp16_values(w).astype(np.float64).T @ g.fp16_values(xv).astype(np.float64)
    got = g.fp32_values(iss.acc[0, :n]).astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # vred.h is the documented tree over the FP32 lanes, vcvt.h is RNE to FP16
    assert iss.x[10] == int(g.reduce_tree_fp32(iss.acc[0, :n]))
    assert np.isclose(g.fp32_values(np.uint32(iss.x[10])), ref.sum(), rtol=1e-5)
    assert np.array_equal(iss.v[2].view(np.uint16), g.fp32_to_fp16(iss.acc[0, :n]))


def test_int8_mac_reduce_and_narrow_against_numpy():
    rng = np.random.default_rng(4)
    n = T.lanes_int8
    a = rng.integers(-128, 128, n, dtype=np.int8)
    b = rng.integers(-128, 128, n, dtype=np.int8)
    iss = run(f"""
        vld v1, 0(zero)
        vld v2, {ROW}(zero)
        vzero acc1
        vmacv.b acc1, v1, v2
        vmacx.b acc1, v1, v2, 3
        vred.b a0, acc1
        li t0, 4
        vcvt.b v3, acc1, t0
        ecall
    """, dmem=_vec(a) + _vec(b))
    ref = a.astype(np.int64) * b + a.astype(np.int64) * b[3]
    assert np.array_equal(iss.acc[1].view(np.int32), ref)
    assert iss.x[10] == int(ref.sum()) & 0xFFFFFFFF
    assert np.array_equal(iss.v[3].view(np.int8), np.clip(ref >> 4, -128, 127))


def test_elementwise_against_float64():
    rng = np.random.default_rng(5)
    n = T.lanes_fp16
    a = g.fp16_bits(rng.uniform(0.5, 2.0, n))
    b = g.fp16_bits(rng.uniform(0.5, 2.0, n))
    iss = run(f"""
        vld v1, 0(zero)
        vld v2, {ROW}(zero)
        vadd.h v3, v1, v2
        vmul.h v4, v1, v2
        vexp.h v5, v1
        vrsqrt.h v6, v2
        li t0, 0x4000          # 2.0
        vmul.hs v7, v1, t0
        vmv.x a0, v2, 5
        vmv.s v0, t0, 1
        ecall
    """, dmem=_vec(a) + _vec(b))
    fa = g.fp16_values(a).astype(np.float64)
    fb = g.fp16_values(b).astype(np.float64)
    f = lambda r: g.fp16_values(iss.v[r].view(np.uint16)).astype(np.float64)   # noqa: E731
    half_ulp = 2.0 ** -11
    np.testing.assert_allclose(f(3), fa + fb, rtol=half_ulp)
    np.testing.assert_allclose(f(4), fa * fb, rtol=half_ulp)
    np.testing.assert_allclose(f(5), np.exp(fa), rtol=2 * half_ulp)     # faithful (< 1 ulp)
    np.testing.assert_allclose(f(6), fb ** -0.5, rtol=2 * half_ulp)
    np.testing.assert_allclose(f(7), 2 * fa, rtol=0)
    assert iss.x[10] == int(b[5]) and iss.v[0].view(np.uint16)[1] == 0x4000


def test_timing_by_hand():
    """Three independent ALU ops on xdp=1 issue on cycles 2, 3, 4; ecall on 5 -> 6 cycles.
    A load feeding an add waits load_latency; a taken jump costs the branch penalty."""
    assert run("addi a0, zero, 1\naddi a1, zero, 2\naddi a2, zero, 3\necall",
               timed=True).result().cycles == 6
    # lw @2, dependent add @2+load_latency, ecall the cycle after
    assert run("lw a0, 0(zero)\nadd a1, a0, a0\necall", timed=True).result().cycles == \
        2 + T.load_latency + 1 + 1
    # j @2, target ecall issues at 2 + 1 + branch_penalty_cycles
    assert run("j end\nnop\nend: ecall", timed=True).result().cycles == \
        2 + 1 + T.branch_penalty_cycles + 1


def test_vmac_result_latency():
    """vred reads the accumulator mac_latency after the last vmac; back-to-back vmacs into
    one accumulator issue every cycle."""
    src = "vmacv.h acc0, v1, v2\n" * 4 + "vred.h a0, acc0\necall"
    r = run(src, timed=True).result()
    # vmacs on 2..5, vred at 5 + mac_latency, ecall after reduce_latency
    assert r.cycles == 5 + T.mac_latency + T.reduce_latency + 1
    assert r.unit_counts == {"VMAC": 5, "SYS": 1}


def test_dual_issue_with_two_vector_ports():
    """vdp=2: a vld and a vmac (different units, independent) issue in one cycle."""
    t2 = TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=2, dmem_kib=16, imem_kib=1,
                    wmem_kib=16)
    t1 = TileConfig(fetch=2, vlen=128, stations=4, xdp=1, vdp=1, dmem_kib=16, imem_kib=1,
                    wmem_kib=16)
    body = "".join(f"vld v{i}, 0(zero)\nvmacv.h acc0, v5, v6\n" for i in range(1, 5)) + "ecall"
    c2 = run(body, tile=t2, timed=True).result().cycles
    c1 = run(body, tile=t1, timed=True).result().cycles
    assert c1 - c2 == 4


def test_two_tiles_exchange_vectors():
    prog = """
        csrr s0, mhartid
        xori s1, s0, 1          # the other tile
        vld v1, 0(zero)
        vsend v1, s1
        vrecv v2
        vadd.h v3, v1, v2
        vst v3, 16(zero)
        ecall
    """
    a, b = g.fp16_bits([1.0] * 8), g.fp16_bits([2.0] * 8)
    tiles = [TileISS(T, assemble(prog), dmem=_vec(a), tile_id=0),
             TileISS(T, assemble(prog), dmem=_vec(b), tile_id=1)]
    results = Network(tiles, latency=5).run_timed()
    for t in tiles:
        assert np.all(g.fp16_values(t.dmem[16:32].view(np.uint16)) == 3.0)
    assert all(r.halted for r in results)
    # csrr@2; xori (RAW on s0) and vld @3; vsend @5 (v1 readable at 3 + load_latency);
    # vrecv when the vector arrives; vadd, vst after their latencies; ecall one later
    send = 3 + T.load_latency
    vadd = send + 5 + T.vnet_latency
    assert results[0].cycles == vadd + T.valu_latency + 1 + 1


@pytest.mark.parametrize("src, message", [
    ("lw a0, 2(zero)\necall", r"lw address 0x2 is misaligned or outside DMEM"),
    ("vld v1, 8(zero)\necall", r"vld address 0x8 is misaligned or outside DMEM"),
    ("nop", r"pc 0x4 is outside the program"),
    (".word 0\necall", r"pc 0x0: 0x00000000 is not a valid instruction"),
    ("vrecv v1\necall", r"vrecv with no vector received"),
    ("li t0, 5000\nwset t0\nvmacw.h acc0, v1, 0\necall", r"WMEM row 5000 >= 1024 rows"),
])
def test_program_errors(src, message):
    iss = TileISS(T, assemble(src))          # no tile given: the assembler does not check
    with pytest.raises(IssError, match=message):
        iss.run()


def _doc_example(title: str) -> str:
    """The assembly block under the heading ``title`` of docs/isa.md."""
    text = (Path(__file__).parent.parent / "docs" / "isa.md").read_text()
    section = text[text.index(title):]
    return section.split("```")[1]


def test_doc_gemv_example_against_numpy():
    rng = np.random.default_rng(8)
    n, k = T.lanes_fp16, 64
    w = g.fp16_bits(rng.normal(0, 0.5, (k, n)))        # WMEM row j = column j of W
    xv = g.fp16_bits(rng.normal(0, 0.5, k))
    iss = run(_doc_example("### Example: GEMV inner loop"), dmem=_vec(xv), wmem=_vec(w))
    ref = g.fp16_values(w).astype(np.float64).T @ g.fp16_values(xv).astype(np.float64)
    got = g.fp16_values(iss.dmem[1024:1024 + 2 * n].view(np.uint16)).astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=2.0 ** -10, atol=1e-3)


def test_doc_vmacx_example_against_numpy():
    rng = np.random.default_rng(9)
    n, k = T.lanes_fp16, 16
    w = g.fp16_bits(rng.normal(0, 0.5, (k + 1, n)))    # one extra row: the last prefetch
    xv = g.fp16_bits(rng.normal(0, 0.5, k))
    dmem = bytearray(2048)
    dmem[:w.nbytes] = w.tobytes()
    dmem[1024:1024 + xv.nbytes] = xv.tobytes()
    iss = run(_doc_example("### Example: software-pipelined"), dmem=bytes(dmem), timed=True)
    ref = g.fp16_values(w[:k]).astype(np.float64).T @ g.fp16_values(xv).astype(np.float64)
    got = g.fp16_values(iss.dmem[1536:1536 + 2 * n].view(np.uint16)).astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=2.0 ** -10, atol=1e-3)


@given(seed=st.integers(0, 2**32 - 1))
def test_timed_and_untimed_runs_agree(seed):
    """Issuing in cycle order (timed) gives the same state as one-at-a-time execution:
    the scoreboard never lets an instruction see a stale value."""
    rng = np.random.default_rng(seed)
    prog = random_program(T, rng, 0, n=50)
    src = "\n".join(line for line in prog.source.splitlines() if "cycle" not in line)
    words = assemble(src, T)
    a = TileISS(T, words, dmem=prog.dmem)
    b = TileISS(T, words, dmem=prog.dmem)
    a.run()
    r = b.run_timed()
    assert a.x == b.x and np.array_equal(a.v, b.v) and np.array_equal(a.acc, b.acc)
    assert np.array_equal(a.dmem, b.dmem) and r.instructions == a.retired
