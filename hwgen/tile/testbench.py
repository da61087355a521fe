"""amaranth.sim driver for :class:`hwgen.tile.core.Core`: load, start, wait, read back.

Everything goes through the core's own ports (``mem``, ``ctrl``) the way the network
interface drives them; architectural registers are read directly from the signals
(``xrf.regs``, ``vrf.regs``, ``vmac.accs``). All helpers are ``async`` functions for
``Simulator.add_testbench``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .signature import MemSel

__all__ = ["MemSel", "mem_write", "mem_read", "load_words", "load_bytes", "read_bytes", "run",
           "read_state", "bytes_to_words", "words_to_bytes", "rows_to_bytes", "bytes_to_rows"]


def bytes_to_words(data: bytes) -> list[int]:
    """Little-endian 32-bit words of ``data`` (zero-padded to a multiple of 4)."""
    data = bytes(data) + b"\0" * (-len(data) % 4)
    return np.frombuffer(data, "<u4").astype(int).tolist()


def words_to_bytes(words: Sequence[int]) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def rows_to_bytes(rows: Sequence[int], row_bits: int) -> bytes:
    """Memory rows (ints, row 0 first) as the bytes at increasing addresses."""
    return b"".join(int(r).to_bytes(row_bits // 8, "little") for r in rows)


def bytes_to_rows(data: bytes, row_bits: int) -> list[int]:
    n = row_bits // 8
    data = bytes(data) + b"\0" * (-len(data) % n)
    return [int.from_bytes(data[i:i + n], "little") for i in range(0, len(data), n)]


async def mem_write(ctx, core, sel: int, addr: int, word: int) -> None:
    """Write one 32-bit word at byte address ``addr`` of memory ``sel``."""
    req = core.mem.req
    ctx.set(req.payload, {"sel": sel, "addr": addr, "we": 1, "wdata": word})
    ctx.set(req.valid, 1)
    await ctx.tick().until(req.ready)
    ctx.set(req.valid, 0)


async def mem_read(ctx, core, sel: int, addr: int) -> int:
    """Read one 32-bit word at byte address ``addr`` of memory ``sel``."""
    req, resp = core.mem.req, core.mem.resp
    ctx.set(req.payload, {"sel": sel, "addr": addr, "we": 0, "wdata": 0})
    ctx.set(req.valid, 1)
    await ctx.tick().until(req.ready)
    ctx.set(req.valid, 0)
    ctx.set(resp.ready, 1)
    (value,) = await ctx.tick().sample(resp.payload).until(resp.valid)
    ctx.set(resp.ready, 0)
    return int(value)


async def load_words(ctx, core, sel: int, base: int, words: Sequence[int]) -> None:
    for i, w in enumerate(words):
        await mem_write(ctx, core, sel, base + 4 * i, int(w))


async def load_bytes(ctx, core, sel: int, base: int, data: bytes) -> None:
    await load_words(ctx, core, sel, base, bytes_to_words(data))


async def read_bytes(ctx, core, sel: int, base: int, length: int) -> bytes:
    words = [await mem_read(ctx, core, sel, base + 4 * i) for i in range(-(-length // 4))]
    return words_to_bytes(words)[:length]


async def run(ctx, core, max_cycles: int = 100_000) -> int:
    """Pulse ``start``, wait for ``done``; return ``ctrl.cycles``."""
    ctx.set(core.ctrl.start, 1)
    await ctx.tick()
    ctx.set(core.ctrl.start, 0)
    for _ in range(max_cycles):
        _, _, done, cycles = await ctx.tick().sample(core.ctrl.done, core.ctrl.cycles)
        if done:
            return int(cycles)
    raise TimeoutError(f"core did not finish within {max_cycles} cycles")


def read_state(ctx, core) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(x registers, v registers as (vregs, vlen/8) uint8, accumulators as uint32 lanes)."""
    t = core.tile
    x = [0] + [int(ctx.get(r)) for r in core.xrf.regs[1:]]
    v = np.array([np.frombuffer(int(ctx.get(r)).to_bytes(t.vlen // 8, "little"), np.uint8)
                  for r in core.vrf.regs])
    acc = np.array([np.frombuffer(int(ctx.get(a)).to_bytes(t.acc_bits // 8, "little"), "<u4")
                    for a in core.vmac.accs]).astype(np.uint32)
    return x, v, acc

