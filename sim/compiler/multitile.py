"""One op split over a tile group: a program per tile, the transfers between them.

The splits are the model's (``explorer.ppa.kernels``, ``phase.py``):

* matmul: output columns in chunks of L over the tiles; the input x (``rows x K``) is
  held split along K (tile i owns reduction blocks ``[i * per, (i + 1) * per)``, as a
  column-split matmul before it leaves its output) and *all-gathered* first around a
  ring of neighbours (:func:`ring_order`): n-1 steps, each forwarding the block received
  in the step before (``vld``/``vsend`` two vectors ahead of ``vrecv``/``vst``, so the
  two-entry tx and rx FIFOs never deadlock). ``vrecv`` pops the oldest vector whatever
  its sender, so every tile hears from one sender only (its ring predecessor). Then the
  GEMM of its column chunks runs as on one tile (:mod:`sim.compiler.gemm`).
* element-wise and row-wise ops: elements / rows split, no transfers.
* attention (``attn_qk``, ``attn_av``): whole GEMMs (sequence x KV head) per tile.

Every tile ends with a dissemination barrier (``ceil(log2 n)`` rounds; in round r tile
i sends a token vector to ``i + 2^r`` and waits for one), the group's synchronisation
before the next op. Tile ids are ``row * cols + col`` of the group's own mesh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil, log2

import numpy as np

from explorer.design import TileConfig
from explorer.workloads.graph import Op

from . import GEMM_KINDS, compile_op
from .emit import Asm
from .gemm import compile_gemm, gemm_operands, gemm_plan
from .layout import Blocked, ceil_div
from .program import TileProgram

__all__ = ["GroupProgram", "compile_group", "run_group", "ring_order", "barrier_rounds",
           "EXCHANGE_AHEAD"]

#: Vectors a tile sends ahead of the ones it receives in the all-gather (tx FIFO depth).
EXCHANGE_AHEAD = 2


@dataclass(frozen=True)
class GroupProgram:
    """The programs of a ``rows x cols`` tile group running one op."""

    op: Op
    tile: TileConfig
    rows: int
    cols: int
    programs: tuple[TileProgram, ...]
    own_blocks: tuple[tuple[int, int], ...] = ()    # matmul: reduction blocks each tile owns

    @property
    def n(self) -> int:
        return self.rows * self.cols


def barrier_rounds(n: int) -> int:
    """Rounds of the dissemination barrier of ``n`` tiles."""
    return ceil(log2(n)) if n > 1 else 0


def _barrier(a: Asm, i: int, n: int) -> None:
    for r in range(barrier_rounds(n)):
        a.li("a0", (i + (1 << r)) % n)
        a.op("vsend", "v0", "a0")
        a.op("vrecv", "v1")


def _with_barrier(prog: TileProgram, i: int, n: int) -> TileProgram:
    """``prog`` with the barrier before its final ``ecall``."""
    if n == 1:
        return prog
    head, sep, tail = prog.source.rpartition("    ecall")
    b = Asm()
    _barrier(b, i, n)
    counts = dict(prog.expected_counts)
    for unit, c in b.counts.items():
        counts[unit] = counts.get(unit, 0) + c
    return TileProgram.build(prog.op, prog.tile, head + b.source + sep + tail, dmem=prog.dmem,
                             wmem=prog.wmem, outputs=prog.outputs, inputs=prog.inputs,
                             expected_counts=counts, loops=prog.loops, n_tiles=prog.n_tiles,
                             tile_index=prog.tile_index, rx=prog.rx, meta=prog.meta)


def _pair(a: Asm, send: int, n_send: int, recv: int, n_recv: int, rb: int) -> None:
    """Send ``n_send`` vectors from DMEM ``send`` (to the tile in a0) while receiving
    ``n_recv`` into DMEM ``recv``. Sends run :data:`EXCHANGE_AHEAD` vectors ahead of the
    receives and each is loaded two sends ahead (v0/v2), so neither the load latency nor
    a wait for a vector stalls the next send; the regular middle is a loop of two."""
    d = EXCHANGE_AHEAD
    sreg, rreg = ("v0", "v2"), ("v1", "v3")
    a.li("t0", send)
    a.li("t1", recv)
    st = {"s": 0, "r": 0, "bs": 0, "br": 0}       # next send/recv index, pointer offsets

    def send_one(preload: bool = True) -> None:
        k = st["s"]
        a.op("vsend", sreg[k % 2], "a0")
        if preload and k + 2 < n_send:
            a.op("vld", sreg[k % 2], f"{(k + 2) * rb - st['bs']}(t0)")
        st["s"] += 1

    def recv_one() -> None:
        k = st["r"]
        a.op("vrecv", rreg[k % 2])
        a.op("vst", rreg[k % 2], f"{k * rb - st['br']}(t1)")
        st["r"] += 1

    for k in range(min(2, n_send)):
        a.op("vld", sreg[k], f"{k * rb}(t0)")
    while st["s"] < min(d, n_send):
        send_one()
    iters = min(n_send - st["s"] - 2, n_recv) // 2      # loads stay inside the range
    if iters >= 2:
        a.li("t2", recv + iters * 2 * rb)
        loop = a.label("xchg")
        a.place(loop)
        k_s = st["s"]
        with a.times(iters):
            for j in range(2):
                a.op("vsend", sreg[(k_s + j) % 2], "a0")
                a.op("vld", sreg[(k_s + j) % 2], f"{(k_s + j + 2) * rb}(t0)")
                a.op("vrecv", rreg[j])
                a.op("vst", rreg[j], f"{j * rb}(t1)")
            a.op("addi", "t0", "t0", 2 * rb)
            a.op("addi", "t1", "t1", 2 * rb)
            a.bne_back("t1", "t2", loop)
        st["s"] += 2 * iters
        st["r"] += 2 * iters
        st["bs"] = st["br"] = 2 * iters * rb
    while st["s"] < n_send or st["r"] < n_recv:
        if st["s"] < n_send:
            send_one()
        if st["r"] < n_recv and (st["r"] < st["s"] - d or st["s"] >= n_send):
            recv_one()


def ring_order(rows: int, cols: int) -> list[int]:
    """Tile ids around a ring of mesh neighbours: along row 0, then snaking back through
    the other rows column by column (or the transpose), one hop per step whenever
    ``rows * cols`` is even; a line (and an odd x odd group) closes with a longer hop."""
    if rows == 1 or cols == 1:
        return list(range(rows * cols))

    def snake(r_n: int, c_n: int) -> list[tuple[int, int]]:
        cells = [(0, c) for c in range(c_n)]
        for c in range(c_n - 1, -1, -1):
            rs = range(1, r_n) if (c_n - 1 - c) % 2 == 0 else range(r_n - 1, 0, -1)
            cells += [(r, c) for r in rs]
        return cells

    if cols % 2 == 0 or rows % 2:
        return [r * cols + c for r, c in snake(rows, cols)]
    return [r * cols + c for c, r in snake(cols, rows)]


def _exchange(i: int, n: int, ring: list[int], own: list[tuple[int, int]], x_rows: int,
              rb: int, seen: dict):
    """The ring all-gather of x for tile ``i`` (``own[t]``: reduction blocks of tile t).

    In step s = 0 .. n-2 a tile sends its successor the block it got in step s-1 (its
    own first) and receives from its predecessor the block owned ``s + 1`` places back;
    each tile hears from one sender only, so vectors arrive in a known order."""
    p = ring.index(i)

    def pre(a: Asm, xl: Blocked, x_addr: int) -> None:
        seen["x_addr"] = x_addr
        a.li("a0", ring[(p + 1) % n])
        for step in range(n - 1):
            out_owner, in_owner = ring[(p - step) % n], ring[(p - step - 1) % n]
            for gi in range(ceil_div(x_rows, xl.group)):
                rg = xl.group_rows(gi)
                base = x_addr + xl.group_base(gi)
                (s0, s1), (r0, r1) = own[out_owner], own[in_owner]
                _pair(a, base + s0 * rg * rb, (s1 - s0) * rg, base + r0 * rg * rb, (r1 - r0) * rg, rb)
    return pre


def compile_group(op: Op, tile: TileConfig, rows: int, cols: int, *,
                  rng: np.random.Generator | None = None, share: int = 1) -> GroupProgram:
    """Programs for ``op`` split over a ``rows x cols`` group of ``tile`` (module docstring)."""
    n = rows * cols
    if n < 1:
        raise ValueError(f"a group needs at least one tile, not {rows}x{cols}")
    rng = rng or np.random.default_rng(0)
    if op.kind != "matmul":
        progs = []
        for i in range(n):
            if op.kind in GEMM_KINDS:
                prog = compile_op(op, tile, n_tiles=n, tile_index=i, rng=rng, share=share)
            else:
                prog = compile_op(op, tile, n_tiles=n, tile_index=i, rng=rng)
            progs.append(_with_barrier(prog, i, n))
        return GroupProgram(op, tile, rows, cols, tuple(progs))
    plan = gemm_plan(op, tile)
    data = gemm_operands(op, plan, rng)
    lanes, rb = plan.lanes, plan.row_bytes
    per = ceil_div(plan.blocks, n)
    own = [(min(t * per, plan.blocks), min((t + 1) * per, plan.blocks)) for t in range(n)]
    ring = ring_order(rows, cols)
    progs = []
    for i in range(n):
        seen: dict[str, int] = {}
        prog = compile_gemm(op, tile, n_tiles=n, tile_index=i, data=data,
                            pre=_exchange(i, n, ring, own, plan.rows, rb, seen) if n > 1 else None)
        if n > 1:                             # the rest of x arrives by the exchange
            xl = Blocked(plan.rows, plan.red, lanes, rb)
            img = bytearray(prog.dmem)
            for gi in range(ceil_div(plan.rows, xl.group)):
                rg, base = xl.group_rows(gi), seen["x_addr"] + xl.group_base(gi)
                s0, s1 = own[i]
                for lo, hi in ((0, s0), (s1, plan.blocks)):
                    img[base + lo * rg * rb:base + hi * rg * rb] = bytes((hi - lo) * rg * rb)
            prog = replace(prog, dmem=bytes(img))
        progs.append(_with_barrier(prog, i, n))
    return GroupProgram(op, tile, rows, cols, tuple(progs), tuple(own))


def run_group(gp: GroupProgram, flit_bits: int, max_cycles: int = 5_000_000):
    """Run every tile's program on a :class:`sim.network.MeshNetwork`; returns the run
    and each tile's outputs (as :func:`sim.compiler.run_program` reads them)."""
    from hwgen.iss import TileISS

    from ..network import MeshNetwork
    tiles = [TileISS(p.tile, p.words, dmem=p.dmem, wmem=p.wmem, tile_id=i)
             for i, p in enumerate(gp.programs)]
    run = MeshNetwork(tiles, gp.rows, gp.cols, flit_bits).run(max_cycles)
    outs = [{o.name: o.read(t.dmem) for o in p.outputs} for p, t in zip(gp.programs, tiles, strict=True)]
    return run, outs
