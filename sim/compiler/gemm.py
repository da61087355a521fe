"""GEMM-like kernels: matmul (GEMV/GEMM), attention QK^T and AV, on one tile.

The loop nest is the one of ``explorer.ppa.kernels`` (``docs/tile_contract.md`` §5):
for each GEMM on the tile (attention: sequence x KV head), for each group of R <= A
rows (one accumulator each), for each column chunk of L outputs, an inner loop over
the ``red / L`` blocks, ``u`` blocks per iteration. One block:

* B in WMEM, R == 1 (GEMV): ``vld x`` + L x ``vmacw``;
* B in WMEM, R > 1: R x ``vld x_r`` + L x (``vldw b`` + R x ``vmacx``);
* B in DMEM (K^T, V): R x ``vld x_r`` + L x (``vld b`` + R x ``vmacx``);
* B from the network: R x ``vld x_r`` + L x (``vrecv b`` + R x ``vmacx``).

Software pipelining: every operand vector is loaded into a rotating register right
after the last read of the value it replaces (x: one register per row when R > 1, two
when R == 1; B rows: two registers), so its load latency overlaps the MACs in between.
The loads of the next block are issued in the current one; the B stream runs on across
column chunks (the next chunk's first rows are loaded by the last block of this one).
After each chunk: ``vcvt`` + ``vzero`` + ``vst`` per row, the x rows reloaded, the chunk
loop's branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explorer import contract as C
from explorer.design import TileConfig
from explorer.ppa.kernels import B_DMEM, B_NET, B_WMEM, unroll_factor
from explorer.workloads.graph import Op

from .emit import Asm
from .layout import Allocator, Blocked, b_operand_rows, ceil_div
from .program import Output, TileProgram
from .streams import Stream

__all__ = ["GemmPlan", "gemm_plan", "compile_gemm", "gemm_operands"]

A = C.ACCS


@dataclass(frozen=True)
class GemmPlan:
    """Shape of the GEMM work of one tile and its loop parameters."""

    gemms: int          # independent GEMMs on this tile
    rows: int
    red: int
    cols: int           # all columns of one GEMM
    chunk0: int         # first column chunk of this tile
    chunks: int         # column chunks of this tile
    lanes: int
    row_bytes: int
    src: int
    int8: bool

    @property
    def blocks(self) -> int:
        return ceil_div(self.red, self.lanes)

    @property
    def red_padded(self) -> int:
        return self.blocks * self.lanes

    def block_mix(self, r: int) -> tuple[int, int, int]:
        """(VMAC, VLSU, VNET) instructions of one block with ``r`` rows."""
        L = self.lanes
        if self.src == B_WMEM and r == 1:
            return L, 1, 0
        return r * L, r + (0 if self.src == B_NET else L), L if self.src == B_NET else 0

    def stride(self, r: int) -> int:
        """Largest per-block byte stride of the DMEM streams (x, and B when in DMEM)."""
        return self.row_bytes * (self.lanes if self.src == B_DMEM else r)

    def unroll(self, tile: TileConfig, r: int) -> int:
        vmac, vlsu, vnet = self.block_mix(r)
        granule = 2 if r == 1 else 1          # two x registers alternate when R == 1
        return int(unroll_factor(tile.imem_kib, vmac + vlsu + vnet, self.blocks,
                                 self.stride(r), granule))


def gemm_plan(op: Op, tile: TileConfig, *, n_tiles: int = 1, tile_index: int = 0,
              share: int = 1, b_source: int | None = None) -> GemmPlan:
    """The tile's share of ``op`` (matmul: column chunks; attention: whole GEMMs)."""
    int8 = op.dtype == "int8"
    lanes = tile.lanes_int8 if int8 else tile.lanes_fp16
    if op.causal:
        raise ValueError("causal attention is not compiled (the kernel computes full score blocks)")
    if op.kind == "matmul":
        gemms_all, rows, red, cols = 1, op.batch * op.m, op.k, op.n
        src = B_WMEM if b_source is None else b_source
    elif op.kind in ("attn_qk", "attn_av"):
        if op.batch % share:
            raise ValueError(f"attention batch {op.batch} is not a multiple of share {share}")
        gemms_all, rows, red, cols = op.batch // share, share * op.m, op.k, op.n
        src = B_DMEM if b_source is None else b_source
    else:
        raise ValueError(f"not a GEMM-like op: {op.kind!r}")
    if min(rows, red, cols) < 1:
        raise ValueError(f"{op.kind} needs rows, k and n >= 1, not {rows}, {red}, {cols}")
    all_chunks = ceil_div(cols, lanes)
    # Model: attention GEMMs are spread over the tiles (columns split only when there are
    # more tiles than GEMMs); matmul columns are split in chunks of L.
    split = max(n_tiles // gemms_all, 1) if op.kind != "matmul" else n_tiles
    per = ceil_div(all_chunks, split)
    gemms = ceil_div(gemms_all, n_tiles) if op.kind != "matmul" else 1
    part = tile_index % split
    chunk0 = min(part * per, all_chunks)
    chunks = max(min(per, all_chunks - chunk0), 0)
    return GemmPlan(gemms, rows, red, cols, chunk0, chunks, lanes, tile.vlen // 8, src, int8)


def gemm_operands(op: Op, plan: GemmPlan, rng: np.random.Generator, share: int = 1
                  ) -> dict[str, np.ndarray]:
    """Random operands: x ``[gemms, rows, red]``, B ``[gemms, red, cols]`` (FP16-exact
    float64 values, or small integers for INT8)."""
    g, rows, red, cols = plan.gemms, plan.rows, plan.red, plan.cols
    if plan.int8:
        return {"x": rng.integers(-128, 128, (g, rows, red)).astype(float),
                "b": rng.integers(-128, 128, (g, red, cols)).astype(float)}
    x = rng.normal(0.0, 1.0, (g, rows, red))
    b = rng.normal(0.0, 1.0 / np.sqrt(red), (g, red, cols))
    return {"x": x.astype(np.float16).astype(float), "b": b.astype(np.float16).astype(float)}


def _bits(values: np.ndarray, int8: bool) -> np.ndarray:
    return values.astype(np.int8) if int8 else values.astype(np.float16).view(np.uint16)


class _Emitter:
    """Emits the loop nest of one tile's GEMM work (see the module docstring)."""

    def __init__(self, plan: GemmPlan, tile: TileConfig, asm: Asm, int8_shift: int):
        self.p, self.t, self.a = plan, tile, asm
        self.sfx = ".b" if plan.int8 else ".h"
        self.shift = int8_shift

    # --- one block's instructions in issue order ---------------------------------
    def _block(self, r: int, j: int, xs: Stream, bs: Stream | None, *, load_x_next: bool,
               load_b_next: bool) -> None:
        """Block ``j`` (relative to the iteration start) of an ``r``-row group."""
        p, a, L, rb = self.p, self.a, self.p.lanes, self.p.row_bytes
        if p.src == B_WMEM and r == 1:
            if load_x_next:
                a.op("vld", f"v{(j + 1) % 2}", f"{xs.imm(a, (j + 1) * rb)}({xs.reg})")
            for e in range(L):
                a.op("vmacw" + self.sfx, "acc0", f"v{j % 2}", e)
            return
        xreg = (lambda row, blk: f"v{row}") if r > 1 else (lambda row, blk: f"v{blk % 2}")
        if r == 1 and load_x_next:     # double-buffered x: load the next block up front
            a.op("vld", xreg(0, j + 1), f"{xs.imm(a, (j + 1) * rb)}({xs.reg})")
        for e in range(L):
            breg = f"v{6 + e % 2}"
            for row in range(r):
                a.op("vmacx" + self.sfx, f"acc{row}", breg, xreg(row, j), e)
                if r > 1 and e == L - 1 and load_x_next:
                    a.op("vld", xreg(row, j + 1), f"{xs.imm(a, ((j + 1) * r + row) * rb)}({xs.reg})")
            # B row e + 2 goes into the register B row e just left.
            if e + 2 < L or load_b_next:
                nj, ne = (j, e + 2) if e + 2 < L else (j + 1, e + 2 - L)
                self._load_b(breg, bs, nj, ne)

    def _load_b(self, reg: str, bs: Stream | None, j: int, e: int) -> None:
        p, a = self.p, self.a
        if p.src == B_WMEM:
            a.op("vldw", reg)
        elif p.src == B_NET:
            a.op("vrecv", reg)
        else:
            a.op("vld", reg, f"{bs.imm(a, (j * p.lanes + e) * p.row_bytes)}({bs.reg})")

    # --- one row group over all chunks -------------------------------------------
    def group(self, r: int) -> dict[str, int]:
        p, a, rb, L = self.p, self.a, self.p.row_bytes, self.p.lanes
        u = p.unroll(self.t, r)
        full, rem = divmod(p.blocks, u)
        looped = full >= 2
        gemv_w = p.src == B_WMEM and r == 1
        xs = Stream("t0", r * rb, rb)
        bs = Stream("t1", L * rb, rb) if p.src == B_DMEM else None
        ux = u * xs.stride
        # Bias: the body reads stream bytes [0, (u+1) * stride) after a bump of u * stride.
        xs.choose_bias(0, (u + 1) * xs.stride - rb, ux if looped else 0)
        if bs is not None:
            bs.choose_bias(0, u * bs.stride + rb, u * bs.stride if looped else 0)
        # Group setup: pointers, accumulators, first loads.
        if p.src == B_WMEM:
            a.op("wset", "s3")
        a.addi(xs.reg, "s1", xs.bias)
        xs.pos = xs.bias
        if bs is not None:
            a.addi(bs.reg, "s3", bs.bias)
            bs.pos = bs.bias
        if looped:
            a.addi("t2", xs.reg, full * ux)
        for row in range(r):
            a.op("vzero", f"acc{row}")
        if p.chunks > 1:
            a.li("s4", p.chunks)
        for row in range(r if not gemv_w and r > 1 else 1):
            a.op("vld", f"v{row}" if r > 1 else "v0", f"{xs.imm(a, row * rb)}({xs.reg})")
        if not gemv_w and p.src != B_NET:
            self._load_b("v6", bs, 0, 0)
            self._load_b("v7", bs, 0, 1)
        chunk_label = a.label("chunk")
        a.place(chunk_label)
        with a.times(p.chunks):
            if looped:
                loop = a.label("blk")
                a.place(loop)
                with a.times(full):
                    a.addi(xs.reg, xs.reg, ux)
                    xs.pos += ux
                    if bs is not None:
                        a.addi(bs.reg, bs.reg, u * bs.stride)
                        bs.pos += u * bs.stride
                    for j in range(u):
                        self._block(r, j, xs, bs, load_x_next=True, load_b_next=True)
                    a.bne_back(xs.reg, "t2", loop)
                # The next iteration starts u blocks on: the pointers are bias ahead again.
                xs.pos -= ux
                if bs is not None:
                    bs.pos -= u * bs.stride
                first = 0
            else:
                first = 0
                for j in range(u):
                    last = rem == 0 and j == u - 1
                    self._block(r, j, xs, bs, load_x_next=not last, load_b_next=True)
                xs.pos -= ux
                if bs is not None:
                    bs.pos -= u * bs.stride
            for j in range(first, rem):
                self._block(r, j, xs, bs, load_x_next=j < rem - 1, load_b_next=True)
            xs.pos -= rem * xs.stride
            if bs is not None:
                bs.pos -= rem * bs.stride
                # The B stream runs on into the next chunk: re-anchor its register.
                if bs.pos != bs.bias:
                    a.addi(bs.reg, bs.reg, bs.bias - bs.pos)
                    bs.pos = bs.bias
            self._chunk_epilogue(r, xs, gemv_w)
            if p.chunks > 1:
                a.op("addi", "s4", "s4", -1)
                a.bne_back("s4", "zero", chunk_label)
        return {"u": u, "full": full, "rem": rem}

    def _chunk_epilogue(self, r: int, xs: Stream, gemv_w: bool) -> None:
        a, rb = self.a, self.p.row_bytes
        outs = [f"v{row}" for row in range(r)] if r > 1 else ["v2"]
        for row in range(r):
            if self.p.int8:
                a.op("vcvt.b", outs[row], f"acc{row}", "s7")
            else:
                a.op("vcvt.h", outs[row], f"acc{row}")
        for row in range(r):
            a.op("vst", outs[row], f"{row * rb}(s2)")
            a.op("vzero", f"acc{row}")
        # Next chunk: x restarts at block 0 (row pointer and first rows).
        for row in range(r):
            a.op("vld", f"v{row}" if r > 1 else "v0", f"{row * rb}(s1)")
        a.addi(xs.reg, "s1", xs.bias)
        xs.pos = xs.bias
        a.op("addi", "s2", "s2", r * rb)


def compile_gemm(op: Op, tile: TileConfig, *, n_tiles: int = 1, tile_index: int = 0,
                 share: int = 1, b_source: int | None = None,
                 rng: np.random.Generator | None = None,
                 data: dict[str, np.ndarray] | None = None, int8_shift: int = 7,
                 pre: Callable[[Asm, Blocked, int], None] | None = None) -> TileProgram:
    """Compile this tile's share of a matmul / attn_qk / attn_av op (module docstring).

    ``data`` may give ``x`` ``[gemms, rows, red]`` and ``b`` ``[gemms, red, cols]`` (the
    tile's GEMMs); otherwise they are drawn from ``rng``. ``b_source`` overrides where
    B comes from (``B_WMEM``, ``B_DMEM``, ``B_NET``). ``pre(asm, x_layout, x_addr)``
    emits code before the GEMM (e.g. the all-gather of x over a tile group).
    """
    plan = gemm_plan(op, tile, n_tiles=n_tiles, tile_index=tile_index, share=share,
                     b_source=b_source)
    if plan.src == B_WMEM and tile.wmem_kib == 0:
        raise ValueError("matmul with weights in WMEM needs a tile with wmem_kib > 0")
    ops = data if data is not None else gemm_operands(op, plan, rng or np.random.default_rng(0))
    x, b = np.asarray(ops["x"], float), np.asarray(ops["b"], float)
    if x.shape != (plan.gemms, plan.rows, plan.red) or b.shape != (plan.gemms, plan.red, plan.cols):
        raise ValueError(f"operands must be x {(plan.gemms, plan.rows, plan.red)} and "
                         f"b {(plan.gemms, plan.red, plan.cols)}, not {x.shape} and {b.shape}")
    L, rb = plan.lanes, plan.row_bytes
    c0, c1 = plan.chunk0 * L, min((plan.chunk0 + plan.chunks) * L, plan.cols)
    cols_tile = max(c1 - c0, 0)
    dmem = Allocator("DMEM", tile.dmem_kib * 1024, rb)
    wmem = Allocator("WMEM", tile.wmem_kib * 1024, rb)
    xl = Blocked(plan.rows, plan.red, L, rb, A)
    x_addr = dmem.put(b"".join(xl.pack(_bits(x[i], plan.int8)).tobytes() for i in range(plan.gemms)),
                      pad_rows=A)
    b_rows = [b_operand_rows(_bits(b[i][:, c0:c1], plan.int8), L, plan.red_padded)
              for i in range(plan.gemms)]
    b_bytes = b"".join(rows.tobytes() for rows in b_rows)
    per_gemm_b = plan.chunks * plan.red_padded
    rx: list[bytes] = []
    if plan.src == B_WMEM:
        b_addr = wmem.put(b_bytes, pad_rows=2) // rb
        s3_step = per_gemm_b
    elif plan.src == B_DMEM:
        b_addr = dmem.put(b_bytes, pad_rows=2)
        s3_step = per_gemm_b * rb
    else:
        b_addr, s3_step = 0, 0
    ol = Blocked(plan.rows, cols_tile, L, rb, A)
    out_addr = dmem.reserve(ol.nbytes * plan.gemms)

    a = Asm()
    if pre is not None:
        pre(a, xl, x_addr)
    em = _Emitter(plan, tile, a, int8_shift)
    a.li("s1", x_addr)
    a.li("s2", out_addr)
    a.li("s3", b_addr)
    if plan.int8:
        a.li("s7", int8_shift)
    n_full, rem_rows = divmod(plan.rows, A)
    if plan.src == B_NET:
        a.op("vrecv", "v6")
        a.op("vrecv", "v7")
    info: dict[str, int] = {"gemms": plan.gemms, "chunks": plan.chunks, "blocks": plan.blocks}
    if plan.chunks and plan.gemms:
        gemm_label = a.label("gemm")
        if plan.gemms > 1:
            a.li("s6", plan.gemms)
        a.place(gemm_label)
        with a.times(plan.gemms):
            if n_full:
                glabel = a.label("grp")
                if n_full > 1:
                    a.li("s5", n_full)
                a.place(glabel)
                with a.times(n_full):
                    info.update({f"{k}_R{A}": v for k, v in em.group(A).items()})
                    a.addi("s1", "s1", A * plan.blocks * rb)
                    if n_full > 1:
                        a.op("addi", "s5", "s5", -1)
                        a.bne_back("s5", "zero", glabel)
            if rem_rows:
                info.update({f"{k}_R{rem_rows}": v for k, v in em.group(rem_rows).items()})
                a.addi("s1", "s1", rem_rows * plan.blocks * rb)
            if plan.gemms > 1:
                a.addi("s3", "s3", s3_step)
                a.op("addi", "s6", "s6", -1)
                a.bne_back("s6", "zero", gemm_label)
    a.op("ecall")
    if plan.src == B_NET:
        # Vectors in the order the kernel pops them (+2 read ahead at the very end).
        order = []
        for i in range(plan.gemms):
            rows = b_rows[i].reshape(plan.chunks, plan.red_padded, -1)
            for _ in range(n_full + (1 if rem_rows else 0)):
                order.extend(rows.reshape(-1, rows.shape[-1]))
        order += [np.zeros_like(order[0])] * 2 if order else []
        rx = [np.ascontiguousarray(v).tobytes() for v in order]
    outputs = tuple(Output(f"y{i}", out_addr + i * ol.nbytes, (plan.rows, cols_tile), ol,
                           "int8" if plan.int8 else "fp16")
                    for i in range(plan.gemms))
    return TileProgram.build(
        op, tile, a.source, dmem=bytes(dmem.image), wmem=bytes(wmem.image), outputs=outputs,
        inputs={"x": x, "b": b}, expected_counts=dict(a.counts), loops=info,
        n_tiles=n_tiles, tile_index=tile_index, rx=tuple(rx),
        meta={"int8_shift": int8_shift, "col0": c0, "col1": c1})
