"""Test programs for the tile core: assembly + DMEM contents, sized from a TileConfig.

Shared by ``test_tile_core.py`` (RTL vs ISS) and ``test_iss.py`` (ISS vs numpy). Data
live in the first :data:`REGION_BYTES` of DMEM; every program ends in ``ecall``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen import golden as g

__all__ = ["REGION_BYTES", "Program", "suite", "random_program", "wmem_rows_fp16",
           "fp16_data", "vmacw_burst", "branch_loop"]

#: DMEM bytes the programs use (loaded before, compared after each run).
REGION_BYTES = 512


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    dmem: bytes


def fp16_data(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """FP16 bit patterns of normal(0, scale) samples (no NaN/inf)."""
    return g.fp16_bits(rng.normal(0.0, scale, n))


def wmem_rows_fp16(tile, rng: np.random.Generator, rows: int) -> np.ndarray:
    """WMEM contents: ``rows`` rows of ``lanes_fp16`` FP16 weights, as uint16 (rows, lanes)."""
    return fp16_data(rng, rows * tile.lanes_fp16, 0.5).reshape(rows, tile.lanes_fp16)


def _region(rng: np.random.Generator) -> bytes:
    return fp16_data(rng, REGION_BYTES // 2).tobytes()


def scalar_loop(t, rng) -> Program:
    return Program("scalar_loop", """
        li t0, 10
        li t1, 0
    loop:
        add t1, t1, t0
        addi t0, t0, -1
        bnez t0, loop
        sw t1, 4(zero)
        lw t2, 4(zero)
        addi t2, t2, 1
        li t3, -123456
        srai t4, t3, 3
        srli t5, t3, 3
        sltu t6, t3, t2
        slt s0, t3, t2
        auipc s1, 0x12
        jal ra, skip
        addi s2, zero, 99          # skipped
    skip:
        xori s3, t3, 0x55
        csrr a0, cycle
        csrr a1, mhartid
        ecall
    """, _region(rng))


def gemv_vmacw(t, rng, b8: bool) -> Program:
    """y = W^T x with weights streamed from WMEM rows 3.., x in v1 (one vmacw per lane)."""
    row = t.vlen // 8
    sfx, lanes = (".b", t.lanes_int8) if b8 else (".h", t.lanes_fp16)
    k = min(lanes, 16)
    macs = "\n".join(f"    vmacw{sfx} acc0, v1, {e}" for e in range(k))
    cvt = "li t1, 3\n    vcvt.b v2, acc0, t1" if b8 else "vcvt.h v2, acc0"
    return Program(f"gemv_vmacw{sfx}", f"""
        li t0, 3
        wset t0
        vld v1, 0(zero)
        vzero acc0
    {macs}
        {cvt}
        vst v2, {2 * row}(zero)
        vred{sfx} a0, acc0
        sw a0, {3 * row}(zero)
        ecall
    """, _region(rng))


def vmacx_pipelined(t, rng) -> Program:
    """Software-pipelined vld + vmacx.h loop (weights in DMEM, loads one row ahead)."""
    row = t.vlen // 8
    return Program("vmacx_pipelined", f"""
        li t0, 0
        li t1, 6
        vld v1, {5 * row}(zero)
        vld v2, 0(t0)
        vzero acc1
    loop:
        vld v3, {row}(t0)
        vmacx.h acc1, v2, v1, 1
        vld v2, {2 * row}(t0)
        vmacx.h acc1, v3, v1, 2
        addi t0, t0, {2 * row}
        addi t1, t1, -2
        bnez t1, loop
        vcvt.h v4, acc1
        vst v4, {6 * row}(zero)
        ecall
    """, _region(rng))


def gemm_vldw(t, rng) -> Program:
    """Two rows (R=2) sharing each weight row: vldw into a register, two vmacx.h."""
    row = t.vlen // 8
    k = min(t.lanes_fp16, 8)
    body = "\n".join(f"    vldw v{3 + e % 2}\n    vmacx.h acc0, v{3 + e % 2}, v1, {e}\n"
                     f"    vmacx.h acc1, v{3 + e % 2}, v2, {e}" for e in range(k))
    return Program("gemm_vldw", f"""
        li t0, 5
        wset t0
        vld v1, 0(zero)
        vld v2, {row}(zero)
        vzero acc0
        vzero acc1
    {body}
        vcvt.h v5, acc0
        vcvt.h v6, acc1
        vst v5, {2 * row}(zero)
        vst v6, {3 * row}(zero)
        ecall
    """, _region(rng))


def elementwise(t, rng) -> Program:
    row = t.vlen // 8
    stores = "\n".join(f"    vst v{r}, {(2 + i) * row}(zero)"
                       for i, r in enumerate((3, 4, 5, 6, 7)))
    return Program("elementwise", f"""
        vld v1, 0(zero)
        vld v2, {row}(zero)
        vadd.h v3, v1, v2
        vsub.h v4, v1, v2
        vmul.h v5, v1, v2
        vmax.h v6, v1, v2
        vexp.h v7, v1
    {stores}
        li t1, 0x3e00
        vrcp.h v3, v2
        vrsqrt.h v4, v2
        vadd.hs v5, v1, t1
        vmul.hs v6, v2, t1
        vmv.s v7, t1, 3
        vmv.x a1, v1, 2
        vadd.h v0, v3, v4
    {stores}
        sw a1, {7 * row}(zero)
        ecall
    """, _region(rng))


def reduction(t, rng) -> Program:
    row = t.vlen // 8
    return Program("reduction", f"""
        vld v1, 0(zero)
        vld v2, {row}(zero)
        vzero acc1
        vzero acc2
        vmacv.h acc1, v1, v2
        vmacv.h acc1, v2, v2
        vmacv.b acc2, v1, v2
        vmacx.b acc2, v2, v1, 5
        vred.h a2, acc1
        vred.b a3, acc2
        li t2, 7
        vcvt.b v3, acc2, t2
        vcvt.h v4, acc1
        vst v3, {2 * row}(zero)
        vst v4, {3 * row}(zero)
        sw a2, {4 * row}(zero)
        sw a3, {4 * row + 4}(zero)
        ecall
    """, _region(rng))


def loopback(t, rng) -> Program:
    """vsend to this tile (id from mhartid; the test bench loops tx into rx) and vrecv."""
    row = t.vlen // 8
    return Program("loopback", f"""
        csrr s0, mhartid
        vld v1, 0(zero)
        vld v2, {row}(zero)
        vsend v1, s0
        vsend v2, s0
        vrecv v5
        vrecv v6
        vadd.h v7, v5, v6
        vst v7, {2 * row}(zero)
        vst v6, {3 * row}(zero)
        vsend v7, s0
        vrecv v4
        vst v4, {4 * row}(zero)
        ecall
    """, _region(rng))


def vmacw_burst(t, n: int) -> Program:
    """``n`` back-to-back vmacw.h into one accumulator (one per cycle by the contract)."""
    macs = "\n".join(f"    vmacw.h acc3, v0, {i % t.lanes_fp16}" for i in range(n))
    return Program(f"vmacw_burst{n}", f"""
        wset zero
    {macs}
        ecall
    """, bytes(REGION_BYTES))


def branch_loop(t, n: int) -> Program:
    """``n`` iterations of addi + taken bnez."""
    return Program(f"branch_loop{n}", f"""
        li t0, {n}
    loop:
        addi t0, t0, -1
        bnez t0, loop
        ecall
    """, bytes(REGION_BYTES))


_SCALAR_RR = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and")
_SCALAR_RI = ("addi", "slti", "sltiu", "xori", "ori", "andi")


def random_program(t, rng: np.random.Generator, index: int, n: int = 40) -> Program:
    """Straight-line mix of scalar and vector ops with random registers (hazards galore)."""
    row = t.vlen // 8
    rows = REGION_BYTES // row
    lines = ["li x31, 2", "wset x31"]
    xr = lambda: f"x{rng.integers(1, 16)}"   # noqa: E731
    vr = lambda: f"v{rng.integers(0, 8)}"    # noqa: E731
    ar = lambda: f"acc{rng.integers(0, 4)}"  # noqa: E731
    for _ in range(n):
        kind = rng.integers(0, 14)
        if kind == 0:
            lines.append(f"{rng.choice(_SCALAR_RR)} {xr()}, {xr()}, {xr()}")
        elif kind == 1:
            lines.append(f"{rng.choice(_SCALAR_RI)} {xr()}, {xr()}, {rng.integers(-2048, 2048)}")
        elif kind == 2:
            op = rng.choice(("slli", "srli", "srai"))
            lines.append(f"{op} {xr()}, {xr()}, {rng.integers(0, 32)}")
        elif kind == 3:
            op = rng.choice(("lw", "sw"))
            lines.append(f"{op} {xr()}, {4 * rng.integers(0, REGION_BYTES // 4)}(zero)")
        elif kind == 4:
            op = rng.choice(("vld", "vst", "vldw"))
            lines.append(f"vldw {vr()}" if op == "vldw" else
                         f"{op} {vr()}, {row * rng.integers(0, rows)}(zero)")
        elif kind == 5:
            sfx, lanes = (".b", t.lanes_int8) if rng.integers(0, 2) else (".h", t.lanes_fp16)
            form = rng.integers(0, 3)
            lines.append([f"vmacw{sfx} {ar()}, {vr()}, {rng.integers(0, lanes)}",
                          f"vmacx{sfx} {ar()}, {vr()}, {vr()}, {rng.integers(0, lanes)}",
                          f"vmacv{sfx} {ar()}, {vr()}, {vr()}"][form])
        elif kind == 6:
            lines.append(f"vzero {ar()}")
        elif kind == 7:
            lines.append(f"vred{rng.choice(('.h', '.b'))} {xr()}, {ar()}")
        elif kind == 8:
            lines.append(rng.choice([f"vcvt.h {vr()}, {ar()}", f"vcvt.b {vr()}, {ar()}, {xr()}"]))
        elif kind == 9:
            op = rng.choice(("vadd.h", "vsub.h", "vmul.h", "vmax.h"))
            lines.append(f"{op} {vr()}, {vr()}, {vr()}")
        elif kind == 10:
            op = rng.choice(("vexp.h", "vrcp.h", "vrsqrt.h"))
            lines.append(f"{op} {vr()}, {vr()}")
        elif kind == 11:
            lines.append(f"{rng.choice(('vadd.hs', 'vmul.hs'))} {vr()}, {vr()}, {xr()}")
        elif kind == 12:
            e = rng.integers(0, t.lanes_fp16)
            lines.append(rng.choice([f"vmv.s {vr()}, {xr()}, {e}", f"vmv.x {xr()}, {vr()}, {e}"]))
        else:
            lines.append(rng.choice([f"csrr {xr()}, cycle",
                                     f"lui {xr()}, {rng.integers(0, 1 << 20)}",
                                     "beq zero, zero, 8\naddi x1, x1, 1"]))
    lines.append("ecall")
    return Program(f"random{index}", "\n".join(lines), _region(rng))


def suite(t, seed: int = 1) -> list[Program]:
    """The RTL-vs-ISS program suite for ``t``."""
    rng = np.random.default_rng(seed)
    progs = [scalar_loop(t, rng), gemv_vmacw(t, rng, False), gemv_vmacw(t, rng, True),
             vmacx_pipelined(t, rng), gemm_vldw(t, rng), elementwise(t, rng),
             reduction(t, rng), loopback(t, rng),
             vmacw_burst(t, 8), vmacw_burst(t, 16), branch_loop(t, 3), branch_loop(t, 4)]
    progs += [random_program(t, rng, i) for i in range(3)]
    return progs
