"""Cycles of element-wise kernels for the vectorised model (passes + row epilogues).

The kernels are those of ``sim/compiler/elementwise.py``. A pass's timing comes from
its tabulated schedule (:func:`explorer.ppa.ewpass.pass_table`: cold-start run lengths,
steady state, loop-control slots); between passes, dependency chains are summed latency
by latency. Row-wise kernels run one row after another:

* rmsnorm: pass 0 (sum of squares) -> ``vred`` -> FP32->FP16 (6 dependent ALU ops) ->
  ``vmv.s``, [``vmul.hs`` 2^k/n], ``vadd.hs`` eps, ``vrsqrt``, ``vmv.x`` (a VALU
  latency each) -> pass 1 from its first op reading the scalar.
* layernorm: pass 0 (sum) -> ``vred`` -> signed conversion (10 dependent ALU ops, 12
  with one scalar port) -> ``vmv.s`` [``vmul.hs``] ``vmv.x`` -> pass 1 (centred sum of
  squares) -> as rmsnorm -> pass 2.
* softmax: ``carry`` partial maxima set to -inf, pass 0 (running max) -> the partials
  combined (``vmax`` chain) -> lane-max broadcast (``vzero``, ``vmacx``, ``vcvt`` per
  lane: 3 VMAC ops, the ``vmax`` folds trail by a lane; 4 vector ops per lane on one
  vector issue slot) -> pass 1 (exp, store, sum) ->
  ``vred`` -> conversion -> ``vmv.s`` ``vrcp`` ``vmv.x`` -> pass 2.
* embed: ``lw`` the row index -> ``wset`` -> pass 0 (``vldw``, ``vst``), then the row's
  bookkeeping.

The setups of later passes go in the latency shadow of the reduction before them, with
the row loop's pointer bumps (they cost only what exceeds that shadow); a row ends with
its ``bne`` (taken: ``branch_penalty_cycles`` bubble). Every kind is one formula with
per-op coefficients (:func:`ew_plan`), evaluated on ``[E, U]`` arrays at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import contract as C
from .ewpass import MAX_VI, MAX_WP, PASSES, loop_extra, unroll_factor
from .ewtable import MAX_ISSUE, PASS_IDS, PassTable, pass_table

__all__ = ["EwPlan", "ew_plan", "ew_cost", "PRELUDE_INSTRS", "CONV_OPS", "CONV_SIGNED_OPS",
           "ROWWISE", "LANE_MAX_TAIL", "ROW_SCALARS", "MAX_PASSES"]

#: Scalar instructions before the first pass (operand addresses, constants; ``li`` of a
#: value beyond 12 bits is ``lui`` + ``addi``): the compiler's prelude per kind.
PRELUDE_INSTRS = {"add": 5, "reshape": 3, "silu_mul": 9, "gelu": 9, "rope": 5,
                  "rmsnorm": 13, "layernorm": 17, "softmax": 8, "embed": 5}
#: Dependent ALU ops of the FP32 -> FP16 conversion of a lane sum (unsigned / signed
#: with its negation; the signed one has two more ops off the chain).
CONV_OPS, CONV_SIGNED_OPS = 6, 10
ROWWISE = ("softmax", "rmsnorm", "layernorm", "embed")
#: Row loop bookkeeping emitted with a later pass's setup: two bases and the counter.
ROW_SCALARS = 3
#: Lane-max broadcast after its last VMAC op: the ``vcvt`` result (MAC latency), its
#: ``vmax``, the final ``vmax`` of the two running maxima (a VALU latency each).
LANE_MAX_TAIL = C.MAC_LATENCY + 2 * C.VALU_LATENCY - 1
MAX_PASSES = max(len(p) for p in PASSES.values())
_K0 = np.array(0)   # np.where resolves a 0-d array's dtype much faster than a Python int

# Per kind, for the gaps before passes 1 and 2: (reduction before it, ALU chain ops,
# ALU chain ops added with one scalar port, VALU ops, VALU ops added when the row length
# is not a power of two, the setup emitted behind the reduction, other scalars there,
# lane max before it).
_GAPS = {
    "rmsnorm": ((1, CONV_OPS, 0, 4, 1, 1, ROW_SCALARS, 0),),
    "layernorm": ((1, CONV_SIGNED_OPS, 2, 2, 1, 1, 0, 0), (1, CONV_OPS, 0, 4, 1, 1, ROW_SCALARS, 0)),
    "softmax": ((0, 0, 0, 0, 0, 0, 0, 1), (1, CONV_OPS, 0, 3, 0, 0, 0, 0)),
}
_N_GAP = 8


@dataclass(frozen=True)
class EwPlan:
    """The op-only coefficients of :func:`ew_cost` for U element-wise ops.

    Op arrays are ``[1, U]``; the passes of all ops are flattened into C columns
    (``[1, C]`` arrays, op by op): ``col_op`` their op, ``col_prev`` the column of the
    pass before (itself for a first pass), ``first`` the first column of each op,
    ``later`` ``[C, U]`` sums the columns of passes after the first per op. The gaps
    before later passes are computed on those columns only (``lc``; ``*_lc`` arrays).
    """

    n_passes: np.ndarray
    rowwise: np.ndarray
    embed: np.ndarray
    softmax: np.ndarray
    per_block: np.ndarray
    prelude: np.ndarray
    pid: np.ndarray
    col_op: np.ndarray
    col_prev: np.ndarray
    first: np.ndarray
    later: np.ndarray
    incidence: np.ndarray    # [C, U]: column c is a pass of op u
    lc: np.ndarray           # [Lc] the columns of later passes
    op_lc: np.ndarray        # their op, the column before, the column after (or itself)
    prev_lc: np.ndarray
    next_lc: np.ndarray
    later_lc: np.ndarray     # [Lc, U] rows ``lc`` of ``later``
    gap: np.ndarray          # [8, 1, Lc] (see _GAPS)
    n_passes_c: np.ndarray   # [1, C] per column: its op's passes, its pass's streams and
    streams: np.ndarray      # stride in vectors per block
    stride_vectors: np.ndarray


def ew_plan(kinds: list[str]) -> EwPlan:
    """Coefficients of the element-wise ops of kinds ``kinds`` (one per column)."""
    pid, col_op, col_prev, first, gaps = [], [], [], [], []
    for c, k in enumerate(kinds):
        first.append(len(pid))
        for i in range(len(PASSES[k])):
            col_prev.append(len(pid) - (i > 0))
            pid.append(PASS_IDS[(k, i)])
            col_op.append(c)
            gaps.append(_GAPS[k][i - 1] if i else (0,) * _N_GAP)
    later = np.zeros((len(pid), len(kinds)))
    for col, (o, prev) in enumerate(zip(col_op, col_prev, strict=True)):
        later[col, o] = float(prev != col)

    col_op, col_prev = np.array(col_op, np.int64), np.array(col_prev, np.int64)
    T, pid_a = pass_table(), np.array([pid], np.int64)
    first = np.array(first, np.int64)
    lc = np.flatnonzero(col_prev != np.arange(len(pid)))
    incidence = ((later > 0) | (np.arange(len(pid))[:, None] == first[None, :])).astype(float)

    def row(f) -> np.ndarray:
        return np.array([[float(f(k)) for k in kinds]])

    return EwPlan(n_passes=row(lambda k: len(PASSES[k])),
                  rowwise=row(lambda k: k in ROWWISE).astype(bool),
                  embed=row(lambda k: k == "embed").astype(bool),
                  softmax=row(lambda k: k == "softmax").astype(bool),
                  per_block=row(lambda k: 2 if k == "rope" else 1),
                  prelude=row(lambda k: PRELUDE_INSTRS[k]),
                  pid=np.array([pid], np.int64), col_op=col_op, col_prev=col_prev, first=first,
                  later=later, incidence=incidence, lc=lc, op_lc=col_op[lc], prev_lc=col_prev[lc],
                  next_lc=np.minimum(lc + 1, len(pid) - 1), later_lc=later[lc],
                  gap=np.array(gaps, float).reshape(-1, _N_GAP)[lc].T[:, None, :],
                  n_passes_c=np.array([[float(len(PASSES[kinds[o]])) for o in col_op]]),
                  streams=T.streams[pid_a], stride_vectors=T.stride_vectors[pid_a])


def _ceil(a, b):
    return np.ceil(a / np.maximum(b, 1))


def ew_cost(t, p: EwPlan, rows: np.ndarray, row_len: np.ndarray, lanes: np.ndarray):
    """``(cycles, instrs, mix)``: one tile's kernel, ``rows`` rows of ``row_len`` elements
    (flat kinds: one row), from START to the ``ecall``. ``t`` is the model's
    :class:`~explorer.ppa.kernels.TileArrays` (``[E, 1]``); ``mix`` is ``[4, E, U]``
    (VLSU, VALU, VMAC, non-linear ops executed)."""
    T = pass_table()
    vi = (np.clip(t.vector_issue[:, 0], 1, MAX_VI) - 1).astype(np.int64)
    wp = (np.clip(t.vr_wp[:, 0], 1, MAX_WP) - 1).astype(np.int64)
    pid, op = p.pid, p.col_op                                     # [1, C], [C]
    cell = pid * (MAX_VI * MAX_WP) + (vi * MAX_WP + wp)[:, None]   # [E, C] schedule
    F = np.take(T.fields, cell, axis=1)                           # [field, E, C]
    cyc, per, n_ops, period, reach, span, ext, last_acc, carry_c = F[:len(PassTable.FIELDS)]

    iw, si = t.issue_width, t.scalar_issue                        # [E, 1]
    s = np.minimum(iw, si)
    blocks = _ceil(row_len, lanes * p.per_block)                  # [E, U]
    n = blocks[:, op]                                             # [E, C]
    # Loop-body alignment, tabulated over the issue rates a validated tile can have.
    if iw.max() > MAX_ISSUE:
        raise ValueError(f"issue width above {MAX_ISSUE} (fetch is at most 16)")
    rates = ((iw - 1) * MAX_ISSUE + si - 1).astype(np.int64)
    _, cap_last, cap_total, ahead = np.take(T.alignment, cell * MAX_ISSUE * MAX_ISSUE + rates, axis=1)
    streams = p.streams
    u = unroll_factor(t.imem_kib / p.n_passes_c, n_ops, n, t.vlen / 8 * p.stride_vectors,
                      period, reach)
    n_it = np.floor(np.maximum(n - ahead, 0) / np.maximum(u, 1))   # loop_shape's iterations
    n_it = np.where(n_it >= 2, n_it, _K0)
    extra = loop_extra(u, cap_total, cap_last, streams, s)
    last = T.lengths.shape[-1] - 1
    k = np.ceil(np.maximum(n - last, 0) / per)              # run_length, gathered in place
    length = np.take(T.lengths, cell * (last + 1) + (n - k * per).astype(np.int64)) + k * cyc
    length = np.where(n_it > 0, length + n_it * (extra + C.BRANCH_PENALTY_CYCLES)
                      - C.BRANCH_PENALTY_CYCLES, length)
    setup = streams + (n_it > 0)

    V, MAC, B = C.VALU_LATENCY, C.MAC_LATENCY, C.BRANCH_PENALTY_CYCLES
    red = C.reduce_latency(t.vlen.astype(np.int64)).astype(float)
    single = (iw == 1).astype(float)
    n_int = row_len.astype(np.int64)[:, p.op_lc]
    np2 = ((n_int & (n_int - 1)) != 0).astype(float)
    carry = carry_c[:, p.first]                                   # [E, U]
    # Gap from the end of the pass before to the cycle this pass's first input is ready
    # (later passes only, columns ``lc``).
    r_, conv, conv1, valu, valu2, hz, hoist, lm = p.gap
    setup_l = setup[:, p.lc]
    after_reduce = np.maximum(last_acc[:, p.prev_lc] + MAC, -1) + red
    shadow = np.maximum(_ceil(hz * setup_l + hoist + single, s) - red, 0)
    # Lane max: 3 VMAC ops per lane, a vmax per lane on the vector issue slots too, and
    # the next passes' setups + row bookkeeping interleaved (softmax: passes 1 and 2).
    L = lanes[:, p.op_lc]
    hook = setup_l + setup[:, p.next_lc] + ROW_SCALARS
    lane_max = np.maximum(np.maximum(3 * L, _ceil(4 * L - 1, t.vector_issue)),
                          _ceil(4 * L - 1 + hook, iw))
    gap = (r_ * after_reduce + conv + conv1 * (si == 1) + V * (valu + valu2 * np2) + hz * shadow
           + lm * (V * carry_c[:, p.prev_lc] + lane_max + LANE_MAX_TAIL - 1))
    later = (gap - ext[:, p.lc] + length[:, p.lc]) @ p.later_lc   # [E, U]
    f = p.first
    setup_f = _ceil(setup[:, f], s)
    head = np.maximum(setup_f, 1)
    head = np.where(p.embed, np.maximum(head, C.LOAD_LATENCY + 1),
                    np.where(p.softmax, np.maximum(head, carry), head))
    tail = np.where(p.embed, _ceil(ROW_SCALARS + 1, s) - 1, single - 1)
    row = head + length[:, f] + later + tail
    start = 2 + _ceil(p.prelude, si)            # cycle 2: first issue; then the prelude
    # The ecall issues after the last instruction and counts one more (docs/isa.md).
    cycles = np.where(p.rowwise, start + rows * (row + 1 + B) - B + 1,
                      start + setup_f + length[:, f] + 2)
    ones = p.incidence
    instrs = ((n * n_ops + n_it * (streams + 1)) @ ones) * rows + p.prelude + rows * 12
    mix = (F[len(PassTable.FIELDS):] * n) @ ones * rows
    return cycles, instrs, mix
