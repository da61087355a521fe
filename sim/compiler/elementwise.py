"""Element-wise and row-wise kernels: softmax, rmsnorm, layernorm, rope, silu_mul, gelu,
add, embed, reshape.

Each kernel is one or more *passes*, a software-pipelined loop over blocks of L elements
(:mod:`sim.compiler.modsched`), plus a per-row epilogue for the row-wise ops. Pass
templates (one block; ``docs/sim.md`` has the maths):

* add: vld a, vld b, vadd, vst.            reshape: vld, vst.
* silu_mul: vld a, vld b, vmul.hs(-1), vexp, vadd.hs(1), vrcp, vmul(a,b), vmul, vst.
* gelu (tanh form = x * sigmoid(2c(x + 0.044715 x^3))): vld, vmul, vmul, vmul.hs, vadd,
  vmul.hs(-2c), vexp, vadd.hs(1), vrcp, vmul, vst.
* rope, pair layout (``[x1, x2]`` per pair of vectors, table ``[cos, sin]``): 4 vld,
  vmul x1c, vmul x2s, vsub, vmul x2c, vmul x1s, vadd, 2 vst (two blocks per pair).
* rmsnorm: (vld, vmacv x*x) | epilogue | (vld x, vld w, vmul.hs r, vmul w, vst).
* layernorm: (vld, vmacv x*1) | epi | (vld, vadd.hs -mean, vmacv d*d) | epi |
  (vld x, vld g, vld b, vadd.hs, vmul.hs, vmul, vadd, vst).
* softmax: (vld, vmax into P partial maxima) | lane max broadcast | (vld, vsub M, vexp,
  vst, vmacv e*1) | epi | (vld, vmul.hs 1/sum, vst).
* embed: per row ``lw`` the WMEM row index, ``wset``, then (vldw, vst) per block.

Row epilogues turn an FP32 lane sum into an FP16 scalar: ``vred.h`` (FP32 bits), then
integer ``add 0x1000; srli 13; sub (112 + k) << 10`` (round half up, exponent rebias and
a division by 2^k), ``vmv.s``, ``vmul.hs`` by 2^k/n, the VALU helper, ``vmv.x``.
Limits: rmsnorm/layernorm need mean(x^2) (variance) in FP16 normal range [2^-14, 2^15).
"""

from __future__ import annotations

import numpy as np

from explorer.design import TileConfig
from explorer.ppa.ewpass import PASSES, VOp
from explorer.ppa.ewtable import pass_schedule
from explorer.ppa.kernels import unroll_factor
from explorer.workloads.graph import Op
from hwgen import golden as g

from .emit import Asm
from .layout import Allocator, ceil_div, pack_fp16
from .modsched import PipelinedPass, StreamSpec
from .program import Output, TileProgram

__all__ = ["compile_elementwise", "pass_templates", "ROWWISE", "elementwise_operands"]

ROWWISE = ("softmax", "rmsnorm", "layernorm")
_FLAT = ("add", "silu_mul", "gelu", "reshape", "rope")
_GELU_C = float(np.sqrt(2.0 / np.pi))


def _h(value: float) -> int:
    return int(g.fp16_bits(value))


def pass_templates(kind: str) -> list[tuple[list[VOp], tuple[str, ...]]]:
    """The first template of each pass of ``kind`` and the streams it walks."""
    if kind not in PASSES:
        raise ValueError(f"not an element-wise kind: {kind!r}")
    return [(list(p.templates[0]), p.streams) for p in PASSES[kind]]


#: Pointer registers of each pass's streams (in template order) and its loop-end register.
_PTRS = (("t0", "t1", "a6", "a7"), ("a0", "a1", "a2", "a3"), ("ra", "gp", "tp", "s0"))
_ENDS = ("t2", "t5", "s6")
#: Registers holding a stream's base at the start of every pass (moved per row).
_BASE = {"a": "s1", "y": "s2", "w": "s3", "b": "s5", "cs": "s3"}


def _row_shape(op: Op, n_tiles: int) -> tuple[int, int]:
    """(rows, row length) of this tile's share; flat kinds are one long row."""
    if op.kind in ROWWISE:
        n = max(op.n, 1)
        rows = ceil_div(ceil_div(op.elems, n), n_tiles)
        return rows, n
    if op.kind == "embed":
        return ceil_div(op.batch * op.m, n_tiles), op.n
    return 1, ceil_div(op.elems, n_tiles)


def elementwise_operands(op: Op, rows: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random FP16-exact operands for one tile's share of ``op`` (float64 arrays)."""
    def h(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float16).astype(float)
    shape = (rows, n)
    if op.kind == "add":
        return {"a": h(rng.normal(0, 1, shape)), "b": h(rng.normal(0, 1, shape))}
    if op.kind == "silu_mul":
        return {"a": h(rng.normal(0, 2, shape)), "b": h(rng.normal(0, 1, shape))}
    if op.kind in ("gelu", "reshape"):
        return {"a": h(rng.normal(0, 1.5, shape))}
    if op.kind == "rope":
        ang = rng.uniform(0, 2 * np.pi, (rows, n // 2 + n % 2))
        return {"a": h(rng.normal(0, 1, shape)), "cos": h(np.cos(ang)), "sin": h(np.sin(ang))}
    if op.kind == "softmax":
        return {"a": h(rng.normal(0, 3, shape))}
    if op.kind == "rmsnorm":
        return {"a": h(rng.normal(0, 2, shape)), "w": h(rng.normal(1, 0.2, n)), "eps": np.array(1e-5)}
    if op.kind == "layernorm":
        return {"a": h(rng.normal(0.5, 2, shape)), "w": h(rng.normal(1, 0.2, n)),
                "b": h(rng.normal(0, 0.2, n)), "eps": np.array(1e-5)}
    if op.kind == "embed":
        vocab = max(op.k, 1)
        return {"table": h(rng.normal(0, 1, (vocab, n))),
                "ids": rng.integers(0, vocab, rows).astype(float)}
    raise ValueError(f"not an element-wise kind: {op.kind!r}")


class _Kernel:
    """Emission state of one element-wise kernel."""

    def __init__(self, op: Op, tile: TileConfig, passes: int):
        self.op, self.t, self.a = op, tile, Asm()
        self.rb, self.L = tile.vlen // 8, tile.lanes_fp16
        self.passes = passes
        self.info: dict[str, int] = {}

    def plan_pass(self, index: int, n_blocks: int) -> PipelinedPass:
        """Pass ``index`` over ``n_blocks`` blocks (schedule and variant: ``ewpass``); each
        pass has its own pointer registers, so its setup can be emitted early."""
        p = PASSES[self.op.kind][index]
        sch = pass_schedule(self.op.kind, index, self.t.vector_issue_per_cycle, self.t.vr_wp)
        stride = p.stride_vectors * self.rb
        ops = p.templates[sch.variant]
        u = int(unroll_factor(self.t.imem_kib / self.passes, len(ops), n_blocks, stride,
                              sch.period, sch.reach))
        streams = {name: StreamSpec(reg, _BASE[name], stride, self.rb)
                   for reg, name in zip(_PTRS[index], p.streams, strict=False)}
        # "@a+R" addresses the second vector of a rope pair.
        ops = [VOp(o.mnemonic, o.dst, tuple(x.replace("+R", f"+{self.rb}") for x in o.operands))
               for o in ops]
        self.info[f"p{index}_variant"] = sch.variant
        return PipelinedPass(ops, sch, streams, n_blocks, u, self.t, _ENDS[index])

    def body(self, index: int, plan: PipelinedPass) -> None:
        self.info.update({f"p{index}_{k}": v for k, v in plan.body(self.a).items()})

    def run(self, index: int, n_blocks: int) -> None:
        plan = self.plan_pass(index, n_blocks)
        plan.setup(self.a)
        self.body(index, plan)

    def fp32_to_fp16(self, reg: str, *, signed: bool) -> None:
        """FP32 bits in ``reg`` -> FP16 bits of value / 2^k (s9 = 0x1000, s10 = (112+k)<<10)."""
        a = self.a
        if signed:
            a.op("srli", "t3", reg, 31)
            a.op("slli", "t3", "t3", 15)
            a.op("slli", reg, reg, 1)
            a.op("srli", reg, reg, 1)
        a.op("add", reg, reg, "s9")
        a.op("srli", reg, reg, 13)
        a.op("sub", reg, reg, "s10")
        a.op("srai", "t4", reg, 31)          # below the FP16 normal range: 0
        a.op("xori", "t4", "t4", -1)
        a.op("and", reg, reg, "t4")
        if signed:
            a.op("or", reg, reg, "t3")


def _scale_consts(a: Asm, n: int) -> int:
    """s9/s10/s11 for dividing a sum of ``n`` terms: returns k (2^k <= n)."""
    k = n.bit_length() - 1
    a.li("s9", 0x1000)
    a.li("s10", (112 + k) << 10)
    a.li("s11", _h((1 << k) / n))
    return k


def compile_elementwise(op: Op, tile: TileConfig, *, n_tiles: int = 1, tile_index: int = 0,
                        rng: np.random.Generator | None = None,
                        data: dict[str, np.ndarray] | None = None) -> TileProgram:
    """Compile this tile's share of an element-wise / row-wise op (module docstring)."""
    kind = op.kind
    if op.dtype != "fp16":
        raise ValueError(f"{kind} is compiled for fp16 only (the VALU is FP16), not {op.dtype}")
    rows, n = _row_shape(op, n_tiles)
    if rows < 1 or n < 1:
        raise ValueError(f"{kind} needs elements, not elems={op.elems} n={op.n}")
    L, rb = tile.lanes_fp16, tile.vlen // 8
    if kind == "layernorm" and n % L:
        raise ValueError(f"layernorm rows of {n} must be a multiple of {L} lanes")
    if kind == "rope" and n % 2:
        raise ValueError(f"rope needs an even number of elements, not {n}")
    d = data if data is not None else elementwise_operands(op, rows, n, rng or np.random.default_rng(0))
    blocks = ceil_div(n, L)
    dm = Allocator("DMEM", tile.dmem_kib * 1024, rb)
    wm = Allocator("WMEM", tile.wmem_kib * 1024, rb)

    def vec(x: np.ndarray, width: int, fill: float = 0.0) -> bytes:
        x = np.atleast_2d(x)
        pad = np.full((x.shape[0], width), fill)
        pad[:, :x.shape[1]] = x
        return pack_fp16(pad)

    n_passes = len(pass_templates(kind)) if kind != "embed" else 1
    k = _Kernel(op, tile, n_passes)
    a = k.a
    meta: dict[str, object] = {}
    if kind in _FLAT:
        if kind == "rope":
            pairs = ceil_div(n // 2, L)
            x1, x2 = d["a"][0, 0::2], d["a"][0, 1::2]
            xs = np.stack([np.pad(x1, (0, pairs * L - len(x1))), np.pad(x2, (0, pairs * L - len(x2)))], 1)
            cs = np.stack([np.pad(d["cos"][0], (0, pairs * L - d["cos"].shape[1])),
                           np.pad(d["sin"][0], (0, pairs * L - d["sin"].shape[1]))], 1)
            # [pairs][2][L]: vector 2q = x1 block q, 2q+1 = x2 block q.
            xa = dm.put(pack_fp16(xs.reshape(pairs, L, 2).transpose(0, 2, 1)), pad_rows=2)
            ca = dm.put(pack_fp16(cs.reshape(pairs, L, 2).transpose(0, 2, 1)), pad_rows=2)
            ya = dm.reserve(pairs * 2 * rb, pad_rows=2)
            a.li("s1", xa)
            a.li("s3", ca)
            a.li("s2", ya)
            k.run(0, pairs)
            outputs = (Output("y", ya, (pairs, 2, L)),)
            meta["pairs"] = pairs
        else:
            addr = {}
            for name in ("a", "b"):
                if name in d:
                    addr[name] = dm.put(vec(d[name], blocks * L), pad_rows=8)
            ya = dm.reserve(blocks * rb, pad_rows=8)
            a.li("s1", addr["a"])
            if "b" in addr:
                a.li("s5", addr["b"])
            a.li("s2", ya)
            if kind == "silu_mul":
                a.li("s8", _h(-1.0))
                a.li("s9", _h(1.0))
            if kind == "gelu":
                a.li("s9", _h(1.0))
                a.li("s10", _h(0.044715))
                a.li("s11", _h(-2 * _GELU_C))
            k.run(0, blocks)
            outputs = (Output("y", ya, (1, blocks * L)),)
        a.op("ecall")
        return _finish(op, tile, k, dm, wm, outputs, d, meta, n_tiles, tile_index)

    row_bytes = blocks * rb
    if kind == "embed":
        ids = d["ids"].astype(int)
        table = d["table"]
        t_addr = wm.put(b"".join(vec(table[i], blocks * L) for i in range(table.shape[0])), pad_rows=1)
        ia = dm.put(np.asarray(t_addr // rb + ids * blocks, "<u4").tobytes())
        ya = dm.reserve(rows * row_bytes, pad_rows=4)
        a.li("s1", ia)
        a.li("s2", ya)
        a.li("s4", rows)
        row = a.label("row")
        a.place(row)
        with a.times(rows):
            a.op("lw", "a4", "0(s1)")
            a.op("wset", "a4")
            k.run(0, blocks)
            a.op("addi", "s1", "s1", 4)
            a.addi("s2", "s2", row_bytes)
            a.op("addi", "s4", "s4", -1)
            a.bne_back("s4", "zero", row)
        a.op("ecall")
        outputs = (Output("y", ya, (rows, blocks * L)),)
        return _finish(op, tile, k, dm, wm, outputs, d, meta, n_tiles, tile_index)

    # Row-wise kinds: x rows, y rows (same layout), per-row passes and epilogues.
    fill = -np.inf if kind == "softmax" else 0.0
    if kind in ("softmax", "layernorm"):      # constants first: reachable from x0
        oa = dm.put(pack_fp16(np.ones(L)))
        a.op("vld", "v7", f"{oa}(zero)")
    if kind == "softmax":
        ninf = dm.put(pack_fp16(np.full(L, -np.inf)))
    xa = dm.put(vec(d["a"], blocks * L, fill), pad_rows=8)
    ya = dm.reserve(rows * row_bytes, pad_rows=8)
    a.li("s1", xa)
    a.li("s2", ya)
    if kind in ("rmsnorm", "layernorm"):
        wa = dm.put(vec(d["w"], blocks * L), pad_rows=8)
        a.li("s3", wa)
        a.li("s8", _h(float(d["eps"])))
        kexp = _scale_consts(a, n)
        meta["k"] = kexp
        if kind == "layernorm":
            ba = dm.put(vec(d["b"], blocks * L), pad_rows=8)
            a.li("s5", ba)
            a.li("s7", 0x8000)
    if kind == "softmax":
        a.li("s9", 0x1000)
        a.li("s10", 112 << 10)
    a.li("s4", rows)
    row = a.label("row")
    a.place(row)
    plans = [k.plan_pass(i, blocks) for i in range(n_passes)]

    def next_row() -> None:
        # After the last pass's setup (the last reader of s1/s2): the next row's bases.
        a.addi("s1", "s1", row_bytes)
        a.addi("s2", "s2", row_bytes)
        a.op("addi", "s4", "s4", -1)

    # Every pass after the first has its setup in the latency shadow of the reduction
    # before it; the row loop's bookkeeping follows the last setup; only the bne is left
    # after the last pass.
    with a.times(rows):
        if kind == "rmsnorm":
            a.op("vzero", "acc0")
            plans[0].setup(a)
            k.body(0, plans[0])
            a.op("vred.h", "a5", "acc0")
            plans[1].setup(a)
            next_row()
            k.fp32_to_fp16("a5", signed=False)
            _scalar_chain(a, "a5", [("vmul.hs", "s11")] if n & (n - 1) else [], "vadd.hs", "s8", "vrsqrt.h")
            k.body(1, plans[1])
        elif kind == "layernorm":
            a.op("vzero", "acc0")
            a.op("vzero", "acc1")
            plans[0].setup(a)
            k.body(0, plans[0])
            a.op("vred.h", "a4", "acc0")
            plans[1].setup(a)
            k.fp32_to_fp16("a4", signed=True)
            a.op("xor", "a4", "a4", "s7")                   # -sum
            _scalar_chain(a, "a4", [("vmul.hs", "s11")] if n & (n - 1) else [], None, None, None)
            k.body(1, plans[1])
            a.op("vred.h", "a5", "acc1")
            plans[2].setup(a)
            next_row()
            k.fp32_to_fp16("a5", signed=False)
            _scalar_chain(a, "a5", [("vmul.hs", "s11")] if n & (n - 1) else [], "vadd.hs", "s8", "vrsqrt.h")
            k.body(2, plans[2])
        else:   # softmax
            sch0 = pass_schedule("softmax", 0, tile.vector_issue_per_cycle, tile.vr_wp)
            for r in sch0.regs["M"]:
                a.op("vld", f"v{r}", f"{ninf}(zero)")
            plans[0].setup(a)
            k.body(0, plans[0])
            rec = _Recorder()
            plans[1].setup(rec)
            plans[2].setup(rec)
            rec.addi("s1", "s1", row_bytes)
            rec.addi("s2", "s2", row_bytes)
            rec.op("addi", "s4", "s4", -1)
            _lane_max(a, L, sch0.regs["M"], rec.ops)
            a.op("vzero", "acc0")
            k.body(1, plans[1])
            a.op("vred.h", "a5", "acc0")
            k.fp32_to_fp16("a5", signed=False)
            _scalar_chain(a, "a5", [], None, None, "vrcp.h")
            k.body(2, plans[2])
        a.bne_back("s4", "zero", row)
    a.op("ecall")
    outputs = (Output("y", ya, (rows, blocks * L)),)
    return _finish(op, tile, k, dm, wm, outputs, d, meta, n_tiles, tile_index)


def _scalar_chain(a: Asm, reg: str, scale: list[tuple[str, str]], add: str | None,
                  add_reg: str | None, helper: str | None) -> None:
    """FP16 scalar in ``reg`` -> vector lane 0 -> (scale, + add_reg, helper) -> ``reg``."""
    a.op("vmv.s", "v0", reg, 0)
    for mnemonic, sreg in scale:
        a.op(mnemonic, "v0", "v0", sreg)
    if add is not None:
        a.op(add, "v0", "v0", add_reg)
    if helper is not None:
        a.op(helper, "v0", "v0")
    a.op("vmv.x", reg, "v0", 0)


def _lane_max(a: Asm, lanes: int, partials: tuple[int, ...], scalars: list[tuple]) -> None:
    """Max over the lanes of the partial maxima, broadcast to every lane of v6.

    The partials are combined with vmax; each lane e is broadcast by ``vmacx acc, ONES,
    m, e`` (v7 = ones) and ``vcvt`` two lanes later, and folded by ``vmax`` into one of
    two running maxima (v6, v5) a lane after that, when the ``vcvt`` result is ready: the
    VMAC unit runs one op per cycle, three per lane. ``scalars`` (recorded instructions)
    are interleaved one per lane.
    """
    m = partials[0]
    for r in partials[1:]:
        a.op("vmax.h", f"v{m}", f"v{m}", f"v{r}")
    run = (6, 5)
    tmp = [r for r in (1, 2, 3, 4) if r != m][:2]
    pending = list(scalars)
    for s in range(lanes + 3):
        if s < lanes:
            a.op("vzero", f"acc{s % 4}")
            a.op("vmacx.h", f"acc{s % 4}", "v7", f"v{m}", s)
        e = s - 2
        if 0 <= e < lanes:
            a.op("vcvt.h", f"v{run[e] if e < 2 else tmp[e % 2]}", f"acc{e % 4}")
        f = s - 3
        if 2 <= f < lanes:
            a.op("vmax.h", f"v{run[f % 2]}", f"v{run[f % 2]}", f"v{tmp[f % 2]}")
        if pending:
            a.op(*pending.pop(0))
    for ins in pending:
        a.op(*ins)
    a.op("vmax.h", "v6", "v6", "v5")


class _Recorder(Asm):
    """Records instructions (mnemonic, operands) instead of emitting them."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []

    def op(self, mnemonic: str, *operands: object) -> None:
        self.ops.append((mnemonic, *operands))


def _finish(op: Op, tile: TileConfig, k: _Kernel, dm: Allocator, wm: Allocator,
            outputs: tuple[Output, ...], d: dict, meta: dict, n_tiles: int, tile_index: int) -> TileProgram:
    return TileProgram.build(op, tile, k.a.source, dmem=bytes(dm.image), wmem=bytes(wm.image),
                             outputs=outputs, inputs=d, expected_counts=dict(k.a.counts),
                             loops=k.info, n_tiles=n_tiles, tile_index=tile_index, meta=meta)
