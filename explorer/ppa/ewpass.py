"""Element-wise passes: block templates, modulo schedules and loop timing (model and compiler).

One definition shared by the analytical model (``explorer.ppa.kernels``) and the kernel
compiler (``sim.compiler.elementwise``). An element-wise op is one or more *passes*; a
pass is a loop over blocks of ``L`` elements whose body is a block *template* (a few
loads, VALU/VMAC ops and stores) software-pipelined by a modulo schedule:

* :func:`schedule` finds the smallest initiation interval ``II`` at which the block
  template meets the contract's per-cycle limits modulo ``II`` (one op per vector unit,
  ``vector_issue_per_cycle``, ``vr_wp`` v-register writes in each write cycle), whose
  in-order issue reproduces it (the core issues in program order, as early as it can,
  so a placement it would not follow is worthless: every candidate is *settled* by
  simulating that issue rule on the periodic program) and whose value lifetimes fit the
  free v registers (circular-arc colouring over a register-rotation period).
* The schedule depends on the tile only through ``vector_issue_per_cycle`` (1-4) and
  ``vr_wp`` (more than 4 ports never bind: at most one result per vector unit and
  cycle), so :mod:`explorer.ppa.ewtable` stores every pass over those 16 combinations;
  the model gathers from it (``[E]`` indices), the compiler reads the same schedules.
* Loop control (one pointer bump per stream and the closing ``bne``) goes into free
  issue slots of the body; :func:`loop_extra` is the closed form of the cycles it adds
  per iteration, :func:`window_alignment` the slot the body ends on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import ceil

import numpy as np

from .. import contract as C

__all__ = ["VOp", "Pass", "PASSES", "Schedule", "loop_extra", "window_alignment",
           "slot_capacity", "loop_shape", "run_length", "NONLINEAR", "OP_UNITS", "MAX_VI",
           "MAX_WP", "SPAN_BLOCKS", "unroll_factor", "KERNEL_IMEM_FRACTION", "ADDR_WINDOW_BYTES"]

#: Share of IMEM one kernel's unrolled body may use (the others stay resident).
KERNEL_IMEM_FRACTION = 0.25
#: Bytes one pointer register reaches with the signed 12-bit load/store offsets.
ADDR_WINDOW_BYTES = 4096
#: Unit, result latency (0: no v/acc result read later) and v-register write of every
#: mnemonic a template uses; tests/test_compiler.py checks them against hwgen.isa.
OP_UNITS: dict[str, tuple[str, int, bool]] = {
    "vld": ("VLSU", C.LOAD_LATENCY, True),
    "vldw": ("VLSU", C.LOAD_LATENCY, True),
    "vst": ("VLSU", 0, False),
    "vmacv.h": ("VMAC", C.MAC_LATENCY, False),
    **{m: ("VALU", C.VALU_LATENCY, True) for m in
       ("vadd.h", "vsub.h", "vmul.h", "vmax.h", "vexp.h", "vrcp.h", "vrsqrt.h", "vadd.hs",
        "vmul.hs")},
}
#: VALU ops costed as non-linear helpers (energy).
NONLINEAR = ("vexp.h", "vrcp.h", "vrsqrt.h")
#: Vector issue rates and write-port counts tabulated (more ports never bind).
MAX_VI, MAX_WP = C.VECTOR_FUS, C.VECTOR_FUS
#: Blocks simulated for the straight-line pass lengths of :class:`PassTable`.
SPAN_BLOCKS = 24


@dataclass(frozen=True)
class VOp:
    """One instruction of a block template.

    ``operands`` are assembly operands where ``%name`` is a block value (a v register
    chosen by the scheduler) and ``@stream+off`` a memory operand on a pointer stream
    (``off`` bytes into the block; ``+R`` is one vector row). ``dst`` names the value
    written (None for stores and accumulates). A value read by the op that writes it
    (a running max) is *carried*: it rotates over its own registers.
    """

    mnemonic: str
    dst: str | None
    operands: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.mnemonic not in OP_UNITS:
            raise ValueError(f"mnemonic must be one of {sorted(OP_UNITS)}, not {self.mnemonic!r}")

    @property
    def srcs(self) -> tuple[str, ...]:
        ops = self.operands[1:] if self.dst is not None else self.operands
        return tuple(o[1:] for o in ops if o.startswith("%") and o[1:] != self.dst)

    @property
    def carried(self) -> bool:
        return self.dst is not None and f"%{self.dst}" in self.operands[1:]

    @property
    def unit(self) -> str:
        return OP_UNITS[self.mnemonic][0]

    @property
    def latency(self) -> int:
        return OP_UNITS[self.mnemonic][1]

    @property
    def writes_v(self) -> bool:
        return OP_UNITS[self.mnemonic][2]

    @property
    def external(self) -> bool:
        """Reads a value produced before the pass (a scalar in a5/a4, or v6)."""
        return any(o in ("a4", "a5", "v6") for o in self.operands[1:])


@dataclass(frozen=True)
class Pass:
    """One software-pipelined loop of a kernel: alternative block templates (the schedule
    picks the fastest), the pointer streams they walk and the free v registers."""

    templates: tuple[tuple[VOp, ...], ...]
    streams: tuple[str, ...]
    regs: int = C.VREGS
    stride_vectors: int = 1           # vectors per block on every stream (rope: a pair)

    def mix(self, variant: int = 0) -> tuple[int, int, int, int]:
        """(VLSU, plain VALU, VMAC, non-linear VALU) instructions per block."""
        ops = self.templates[variant]
        n = Counter(o.unit for o in ops)
        nl = sum(o.mnemonic in NONLINEAR for o in ops)
        return n["VLSU"], n["VALU"] - nl, n["VMAC"], nl


_K0 = np.array(0)   # np.where resolves a 0-d array's dtype much faster than a Python int

def _p(templates: list[list[VOp]] | list[VOp], streams: tuple[str, ...], regs: int = C.VREGS,
       stride: int = 1) -> Pass:
    if templates and isinstance(templates[0], VOp):
        templates = [templates]
    return Pass(tuple(tuple(t) for t in templates), streams, regs, stride)


V = VOp
#: The passes of every element-wise kind (``docs/sim.md`` has the maths). Scalars: s8 -1
#: or eps, s9 1.0, s10/s11 constants, a4/a5 per-row scalars; v6/v7 per-row vectors.
PASSES: dict[str, tuple[Pass, ...]] = {
    "add": (_p([V("vld", "a", ("%a", "@a")), V("vld", "b", ("%b", "@b")),
                V("vadd.h", "y", ("%y", "%a", "%b")), V("vst", None, ("%y", "@y"))], ("a", "b", "y")),),
    "reshape": (_p([V("vld", "a", ("%a", "@a")), V("vst", None, ("%a", "@y"))], ("a", "y")),),
    "embed": (_p([V("vldw", "v", ("%v",)), V("vst", None, ("%v", "@y"))], ("y",)),),
    # silu_mul = a * sigmoid(a) * b. Variant 1 reloads a for the a*b product at the end
    # of the chain instead of keeping a (or a*b) live across it: one more load, ~10
    # fewer register-cycles per block.
    "silu_mul": (_p([[V("vld", "a", ("%a", "@a")), V("vld", "b", ("%b", "@b")),
                      V("vmul.hs", "t1", ("%t1", "%a", "s8")), V("vmul.h", "ab", ("%ab", "%a", "%b")),
                      V("vexp.h", "t2", ("%t2", "%t1")), V("vadd.hs", "t3", ("%t3", "%t2", "s9")),
                      V("vrcp.h", "t4", ("%t4", "%t3")), V("vmul.h", "y", ("%y", "%ab", "%t4")),
                      V("vst", None, ("%y", "@y"))],
                     [V("vld", "a", ("%a", "@a")), V("vmul.hs", "t1", ("%t1", "%a", "s8")),
                      V("vexp.h", "t2", ("%t2", "%t1")), V("vadd.hs", "t3", ("%t3", "%t2", "s9")),
                      V("vrcp.h", "t4", ("%t4", "%t3")), V("vld", "a2", ("%a2", "@a")),
                      V("vld", "b", ("%b", "@b")), V("vmul.h", "ab", ("%ab", "%a2", "%b")),
                      V("vmul.h", "y", ("%y", "%ab", "%t4")), V("vst", None, ("%y", "@y"))]],
                    ("a", "b", "y")),),
    # gelu = x * sigmoid(2c (x + 0.044715 x^3)). Variants reload x for the final product
    # (1) and also for x + p (2): x is otherwise live across the whole chain.
    "gelu": (_p([[V("vld", "x", ("%x", "@a")), V("vmul.h", "x2", ("%x2", "%x", "%x")),
                  V("vmul.h", "x3", ("%x3", "%x2", "%x")), V("vmul.hs", "p", ("%p", "%x3", "s10")),
                  V("vadd.h", "q", ("%q", "%p", "%x")), V("vmul.hs", "r", ("%r", "%q", "s11")),
                  V("vexp.h", "e", ("%e", "%r")), V("vadd.hs", "d", ("%d", "%e", "s9")),
                  V("vrcp.h", "s", ("%s", "%d")), V("vmul.h", "y", ("%y", "%x", "%s")),
                  V("vst", None, ("%y", "@y"))],
                 [V("vld", "x", ("%x", "@a")), V("vmul.h", "x2", ("%x2", "%x", "%x")),
                  V("vmul.h", "x3", ("%x3", "%x2", "%x")), V("vmul.hs", "p", ("%p", "%x3", "s10")),
                  V("vadd.h", "q", ("%q", "%p", "%x")), V("vmul.hs", "r", ("%r", "%q", "s11")),
                  V("vexp.h", "e", ("%e", "%r")), V("vadd.hs", "d", ("%d", "%e", "s9")),
                  V("vrcp.h", "s", ("%s", "%d")), V("vld", "x9", ("%x9", "@a")),
                  V("vmul.h", "y", ("%y", "%x9", "%s")), V("vst", None, ("%y", "@y"))],
                 [V("vld", "x", ("%x", "@a")), V("vmul.h", "x2", ("%x2", "%x", "%x")),
                  V("vmul.h", "x3", ("%x3", "%x2", "%x")), V("vmul.hs", "p", ("%p", "%x3", "s10")),
                  V("vld", "x5", ("%x5", "@a")), V("vadd.h", "q", ("%q", "%p", "%x5")),
                  V("vmul.hs", "r", ("%r", "%q", "s11")),
                  V("vexp.h", "e", ("%e", "%r")), V("vadd.hs", "d", ("%d", "%e", "s9")),
                  V("vrcp.h", "s", ("%s", "%d")), V("vld", "x9", ("%x9", "@a")),
                  V("vmul.h", "y", ("%y", "%x9", "%s")), V("vst", None, ("%y", "@y"))]], ("a", "y")),),
    "rope": (_p([V("vld", "x1", ("%x1", "@a")), V("vld", "c", ("%c", "@cs")),
                 V("vld", "x2", ("%x2", "@a+R")), V("vld", "s", ("%s", "@cs+R")),
                 V("vmul.h", "m1", ("%m1", "%x1", "%c")), V("vmul.h", "m2", ("%m2", "%x2", "%s")),
                 V("vmul.h", "m3", ("%m3", "%x2", "%c")), V("vmul.h", "m4", ("%m4", "%x1", "%s")),
                 V("vsub.h", "o1", ("%o1", "%m1", "%m2")), V("vadd.h", "o2", ("%o2", "%m3", "%m4")),
                 V("vst", None, ("%o1", "@y")), V("vst", None, ("%o2", "@y+R"))],
                ("a", "cs", "y"), stride=2),),
    "rmsnorm": (_p([V("vld", "x", ("%x", "@a")), V("vmacv.h", None, ("acc0", "%x", "%x"))], ("a",)),
                _p([V("vld", "x", ("%x", "@a")), V("vld", "w", ("%w", "@w")),
                    V("vmul.hs", "t", ("%t", "%x", "a5")), V("vmul.h", "y", ("%y", "%t", "%w")),
                    V("vst", None, ("%y", "@y"))], ("a", "w", "y"))),
    "layernorm": (_p([V("vld", "x", ("%x", "@a")), V("vmacv.h", None, ("acc0", "%x", "v7"))], ("a",), 7),
                  _p([V("vld", "x", ("%x", "@a")), V("vadd.hs", "d", ("%d", "%x", "a4")),
                      V("vmacv.h", None, ("acc1", "%d", "%d"))], ("a",), 7),
                  _p([V("vld", "x", ("%x", "@a")), V("vld", "w", ("%w", "@w")),
                      V("vld", "b", ("%b", "@b")), V("vadd.hs", "d", ("%d", "%x", "a4")),
                      V("vmul.hs", "t", ("%t", "%d", "a5")), V("vmul.h", "u", ("%u", "%t", "%w")),
                      V("vadd.h", "y", ("%y", "%u", "%b")), V("vst", None, ("%y", "@y"))],
                     ("a", "w", "b", "y"), 7)),
    "softmax": (_p([V("vld", "x", ("%x", "@a")), V("vmax.h", "M", ("%M", "%M", "%x"))], ("a",), 7),
                _p([V("vld", "x", ("%x", "@a")), V("vsub.h", "d", ("%d", "%x", "v6")),
                    V("vexp.h", "e", ("%e", "%d")), V("vst", None, ("%e", "@y")),
                    V("vmacv.h", None, ("acc0", "%e", "v7"))], ("a", "y"), 6),
                _p([V("vld", "e", ("%e", "@y")), V("vmul.hs", "p", ("%p", "%e", "a5")),
                    V("vst", None, ("%p", "@y"))], ("y",), 7)),
}
del V


@dataclass(frozen=True)
class Schedule:
    """The program order of one pipelined template and what in-order issue makes of it.

    Members
    -------
    variant : int
        Which template of the pass (:data:`PASSES` lists alternatives).
    order_ii, order : int, tuple[int, ...]
        The modulo placement that fixes the program order: event (block j, op i) comes
        at ``j * order_ii + order[i]`` (ties: lower j, then lower i first).
    carry : int
        Registers a carried value (running max) rotates over.
    regs : dict[str, tuple[int, ...]]
        Value -> the physical v registers it rotates over (block j uses ``regs[j % len]``).
    period : int
        Blocks after which register names and the steady state repeat: a loop body
        holds a multiple of it.
    blocks, cycles : int
        Steady state: ``blocks`` blocks issue every ``cycles`` cycles (``ii`` per block).
    times : tuple[tuple[int, ...], ...]
        Steady-state issue cycle of op i of block j: ``(j // blocks) * cycles +
        times[j % blocks][i]`` (plus a constant).
    vec_use : tuple[int, ...]
        Vector ops issued in each cycle residue modulo ``cycles`` in the steady state.
    lengths : tuple[int, ...]
        ``lengths[n]``: cycles from the first to the last issue + 1 of a straight-line run
        of ``n`` blocks from a cold start (``n`` < :data:`SPAN_BLOCKS`; beyond, ``cycles``
        more every ``blocks`` blocks).
    external : int
        Issue cycle (in a straight-line run) of the first op reading a per-row input
        (-1 when none): a pass that waits for such an input starts this much earlier.
    last_acc : int
        Issue cycle of the last accumulate of a run minus the run's length (-1 when
        none): the accumulator is final ``last_acc + mac_latency`` after the run ends.
    """

    variant: int
    order_ii: int
    order: tuple[int, ...]
    carry: int
    regs: dict[str, tuple[int, ...]]
    period: int
    blocks: int
    cycles: int
    times: tuple[tuple[int, ...], ...]
    vec_use: tuple[int, ...]
    lengths: tuple[int, ...]
    external: int
    last_acc: int

    @property
    def ii(self) -> float:
        """Cycles per block in the steady state."""
        return self.cycles / self.blocks

    def real(self, j: int, i: int) -> int:
        """Steady-state issue cycle of op ``i`` of block ``j``."""
        return (j // self.blocks) * self.cycles + self.times[j % self.blocks][i]

    @property
    def span(self) -> int:
        """Cycles from a steady-state period's start to its blocks' last issue + 1."""
        return max(max(row) for row in self.times) + 1

    @property
    def reach(self) -> int:
        """Blocks beyond ``u`` a loop body's pointer offsets reach (12-bit window)."""
        return ceil(self.span / self.cycles) * self.blocks + 3

    def length(self, n_blocks: int) -> int:
        """Cycles of a straight-line run of ``n_blocks`` blocks (first to last issue + 1)."""
        last = len(self.lengths) - 1
        if n_blocks <= last:
            return self.lengths[n_blocks]
        k = ceil((n_blocks - last) / self.blocks)
        return self.lengths[n_blocks - k * self.blocks] + k * self.cycles


def run_length(lengths, blocks, cycles, n_blocks):
    """Straight-line run length of ``n_blocks`` blocks: ``lengths`` ``[..., N]`` (the
    tabulated cold-start runs), the others broadcast to ``lengths.shape[:-1]``;
    ``cycles`` more every ``blocks`` blocks beyond the table."""
    last = lengths.shape[-1] - 1
    k = np.ceil(np.maximum(n_blocks - last, 0) / blocks)
    idx = np.broadcast_to(n_blocks - k * blocks, lengths.shape[:-1]).astype(np.int64)
    return np.take_along_axis(lengths, idx[..., None], axis=-1)[..., 0] + k * cycles


def slot_capacity(vec_use, issue_width, scalar_issue) -> np.ndarray:
    """Scalar ops that fit next to the vector ops of each cycle residue of a schedule.

    ``vec_use`` is ``[..., R]`` (residues beyond ``II`` padded with -1); tile rates
    broadcast against its leading axes.
    """
    vu = np.asarray(vec_use, float)
    iw = np.asarray(issue_width, float)[..., None]
    si = np.asarray(scalar_issue, float)[..., None]
    return np.where(vu >= 0, np.maximum(np.minimum(iw - vu, si), 0), 0)


def window_alignment(vec_use, issue_width, scalar_issue):
    """``(r, cap_last, cap_total)``: the residue a loop body ends on (the one with vector
    ops and the most scalar room, first on ties), its scalar room and the room per II."""
    vu = np.asarray(vec_use, float)
    cap = slot_capacity(vu, issue_width, scalar_issue)
    r = np.argmax(np.where(vu > 0, cap, -1), axis=-1)
    return r, np.take_along_axis(cap, r[..., None], -1)[..., 0], cap.sum(-1)


def loop_extra(u, cap_total, cap_last, streams, scalar_slots):
    """Cycles a loop iteration adds to ``u * II`` for its control (before the taken-branch
    bubble): zero when the pointer bumps and the ``bne`` fit the free slots of the body
    (``u * cap_total`` in all, ``cap_last`` in its last cycle, which holds the ``bne``;
    the bumped pointer the ``bne`` compares must be bumped a cycle earlier); otherwise
    extra cycles after the body of ``scalar_slots`` scalar ops each."""
    room = np.asarray(u, float) * cap_total
    rest = np.maximum(streams - room, 0)
    k = np.ceil((rest + 1) / np.asarray(scalar_slots, float))
    extra = np.maximum(k, 1) + ((room == 0) & (k == 1))
    fits = (cap_last >= 1) & (room >= streams + 1) & (room > cap_last)
    return np.where(fits, _K0, extra)


def loop_shape(n_blocks, u, cycles, blocks, span, r_last):
    """``(c0, ahead, iterations)`` of a pass looped ``u`` blocks per iteration: the body is
    the steady-state cycles ``[c0, c0 + u / blocks * cycles)`` (``c0`` >= ``span - 1``,
    ending on residue ``r_last``); ``ahead`` blocks beyond an iteration's own are in it."""
    c0 = span - 1 + np.mod(r_last + 1 - (span - 1), cycles)
    ahead = blocks * (np.floor((c0 - 1) / cycles) + 1)
    return c0, ahead, np.floor(np.maximum(n_blocks - ahead, 0) / np.maximum(u, 1))


def unroll_factor(imem_kib, vec_per_block, blocks, stride_bytes, granule=1, reach=1):
    """Blocks per loop iteration (scalars or broadcasting arrays).

    As many as :data:`KERNEL_IMEM_FRACTION` of IMEM holds, but no more than one pointer
    reaches with its 12-bit offsets: a stream advancing ``stride_bytes`` per block is
    read up to ``reach`` blocks beyond the iteration's own (GEMM: one block ahead), so
    ``(u + reach) * stride_bytes <= ADDR_WINDOW_BYTES`` (at least one block). ``u`` is a
    multiple of ``granule`` (register rotation), or all ``blocks``.
    """
    budget = np.asarray(imem_kib, float) * (1024 / 4 * KERNEL_IMEM_FRACTION)
    u = np.floor(budget / np.maximum(vec_per_block, 1))
    stride = np.asarray(stride_bytes, float)
    u = np.where(stride > 0, np.minimum(u, np.floor(ADDR_WINDOW_BYTES / np.maximum(stride, 1)) - reach), u)
    u = np.maximum(np.floor(u / granule) * granule, granule)
    return np.maximum(np.minimum(u, np.maximum(blocks, 1)), 1)
