"""Traced models (ONNX graphs, torch.export programs) as one node list with polynomial shapes.

The importers (:mod:`.onnx_import`, :mod:`.torch_import`) translate their graph into a
:class:`TracedModel`: nodes with *canonical* op names and tensors whose shapes are sympy
polynomials in one symbol :data:`S`, the tokens of the one sequence the model was traced on
(batch 1; every sequence is independent, so a batch of ``b`` is ``b`` times the work).
:func:`explorer.workloads.patterns.recognise` maps that node list onto the builder's op
kinds and returns :class:`OpTemplate` records whose sizes stay polynomials in ``S``; :mod:`.imported` turns
them into the prefill and decode :class:`~explorer.workloads.graph.OpGraph` s.

Recognition (docs/workloads.md, "Imported models"):

- a value is *live* when it depends on the token input; nodes without a live input are
  the constant subgraph (RoPE cos/sin tables, causal masks, shape arithmetic): tables a
  kernel reads, not work, so they produce no op;
- data movement (reshape, transpose, expand, slice, cast, ...) is folded into the edges;
- linear/matmul with a parameter operand -> ``matmul`` (a following add of a parameter
  vector is its bias); activation x activation matmuls -> ``attn_qk`` / ``attn_av`` around
  a softmax; ``scaled_dot_product_attention`` -> the same three ops; a gather from a
  parameter table -> ``embed``;
- element-wise nodes fed by one source tensor are one fused op classified by content:
  a mean + rsqrt/sqrt (``rmsnorm``), mean-subtraction as well (``layernorm``), softmax
  (``softmax``, absorbing the score scale and mask), erf/tanh/gelu (``gelu``),
  sigmoid/silu (``silu_mul`` with the gate product that follows), products with a
  position-dependent table plus an add (``rope``); element-wise arithmetic of two
  sources is an ``add`` (residual) each, a concat of two sources a ``reshape``.

Anything else reachable from the input is an :class:`~explorer.errors.InputError` that
names the op and the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any

import sympy

from ..errors import InputError
from .graph import OP_KINDS

__all__ = ["S", "TValue", "TNode", "TracedModel", "OpTemplate", "Recognised", "GraphWalker",
           "poly", "poly_eval", "const_size", "MOVEMENT_OPS", "ELEMENTWISE_OPS", "REDUCE_OPS",
           "SHAPE_ONLY_OPS", "CONSTANT_ONLY_OPS", "ALLOWED_IN_PATTERN"]

#: Tokens of the traced sequence: every shape is a polynomial in S.
S = sympy.Symbol("S", positive=True, integer=True)

#: Zero-cost views and copies: folded into the edges (outputs alias the live input).
MOVEMENT_OPS = frozenset({"view", "transpose", "expand", "slice", "select", "split", "cast",
                          "identity", "concat"})
#: Element-wise math (unary and binary), fused by source into one op per pattern.
ELEMENTWISE_OPS = frozenset({
    "neg", "exp", "log", "sqrt", "rsqrt", "reciprocal", "sigmoid", "tanh", "erf", "sin",
    "cos", "silu", "gelu", "relu", "abs", "add", "sub", "mul", "div", "pow", "max", "min",
    "where", "masked_fill", "softmax", "rms_norm", "layer_norm"})
REDUCE_OPS = frozenset({"reduce_mean", "reduce_sum", "reduce_max", "reduce_min"})
#: Outputs depend only on the input's shape (never live).
SHAPE_ONLY_OPS = frozenset({"shape", "like"})
#: Ops only the constant subgraph may contain (masks, position tables, shape arithmetic).
CONSTANT_ONLY_OPS = frozenset({"range", "trilu", "compare", "full", "logical", "constant",
                               "einsum", "unsupported"})
_ANCHOR_OPS = frozenset({"linear", "matmul", "embedding", "sdpa"})
_KNOWN_OPS = (MOVEMENT_OPS | ELEMENTWISE_OPS | REDUCE_OPS | SHAPE_ONLY_OPS | CONSTANT_ONLY_OPS
              | _ANCHOR_OPS)

#: Ops each element-wise pattern may contain (anything else in it is unsupported).
ALLOWED_IN_PATTERN = {
    "rmsnorm": {"rms_norm", "pow", "mul", "reduce_mean", "add", "sqrt", "rsqrt", "reciprocal",
                "div"},
    "layernorm": {"layer_norm", "reduce_mean", "sub", "pow", "mul", "add", "sqrt", "rsqrt",
                  "reciprocal", "div"},
    "softmax": {"softmax", "mul", "div", "add", "sub", "where", "masked_fill", "exp",
                "reduce_sum", "reduce_max", "max"},
    "gelu": {"gelu", "erf", "tanh", "mul", "add", "div", "pow", "sub"},
    "silu": {"silu", "sigmoid", "mul"},
    "rope": {"mul", "neg", "add", "sub", "concat"},
    "arith": {"add", "sub", "mul", "div", "neg", "concat"},
}


@dataclass(frozen=True)
class TValue:
    """A tensor of the traced graph.

    ``shape`` holds sympy expressions in :data:`S` (None: not a tensor, e.g. a SymInt);
    ``param`` is the storage key of a weight (tied weights share one key), None otherwise;
    ``is_int`` marks integer/bool tensors (token ids, masks).
    """

    shape: tuple[sympy.Expr, ...] | None
    param: str | None = None
    is_int: bool = False

    @property
    def numel(self) -> sympy.Expr:
        return sympy.expand(prod(self.shape or (), start=sympy.Integer(1)))


@dataclass(frozen=True)
class TNode:
    """One node: a canonical ``op`` (see the module's op sets) with the source's op name."""

    name: str
    source_op: str
    op: str
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    scope: str = ""
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in _KNOWN_OPS:
            raise ValueError(f"TNode.op must be a canonical op, not {self.op!r}")


@dataclass(frozen=True)
class TracedModel:
    """An imported graph: nodes in topological order, tensors, the token input, outputs.

    ``params_total`` is the model's own parameter count when the importer knows it (torch:
    ``sum(p.numel())`` over unique parameters); otherwise the parameters the graph uses.
    """

    name: str
    source: str
    kind: str                         # "onnx" or "torch"
    nodes: tuple[TNode, ...]
    values: Mapping[str, TValue]
    token_input: str
    outputs: tuple[str, ...]
    where: str                        # for messages: the file or the module spec
    params_total: int | None = None
    aux_inputs: tuple[str, ...] = ()  # other graph inputs (attention_mask, position_ids)


@dataclass(frozen=True)
class OpTemplate:
    """One op of the workload with sizes as coefficient tuples of polynomials in S.

    ``rows``: per-sequence rows (matmul m, embed m, element-wise elems / n); attention ops
    use ``q_rows`` (queries, from the query side) and ``keys`` (from the key side), which
    decode evaluates at 1 and kv_len respectively; ``kv_k`` / ``kv_v``: K/V cache elements
    per cached token this op moves.
    """

    name: str
    kind: str
    block: str
    layer: int
    inputs: tuple[str, ...]
    rows: tuple[int, ...] = (0,)
    k: int = 0
    n: int = 0
    heads: int = 0
    q_rows: tuple[int, ...] = (0,)
    keys: tuple[int, ...] = (0,)
    kv_elems_per_token: int = 0
    causal: bool = False
    bias: bool = False
    params: int = 0                   # parameters this op owns
    read_params: int = 0              # parameters one execution reads (tied: full)
    last_row_only: bool = False       # lm_head: prefill runs it on the last position only
    from_input: bool = False          # reads the token input (graph source)
    flops_per_elem: int = 0           # element-wise kinds; 0 for GEMM-like

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"OpTemplate.kind must be one of {', '.join(OP_KINDS)}, "
                             f"not {self.kind!r}")
        if self.params > self.read_params and self.kind != "embed":
            raise ValueError(f"OpTemplate.params ({self.params}) must not exceed read_params "
                             f"({self.read_params})")


@dataclass(frozen=True)
class Recognised:
    """The ops of a traced model plus the figures :mod:`.imported` reports in ``meta``."""

    templates: tuple[OpTemplate, ...]
    params: int
    causal: bool                      # causal attention (or none): prefill + decode
    has_attention: bool
    info: Mapping[str, Any]
    notes: tuple[str, ...]


def poly(expr: sympy.Expr, what: str) -> tuple[int, ...]:
    """Integer coefficients (constant first) of a polynomial in :data:`S`."""
    expr = sympy.expand(sympy.sympify(expr))
    free = expr.free_symbols - {S}
    if free:
        raise InputError(f"{what}: size depends on {', '.join(sorted(map(str, free)))} "
                         f"besides the sequence length")
    try:
        coeffs = sympy.Poly(expr, S).all_coeffs()[::-1]
    except sympy.PolynomialError:
        raise InputError(f"{what}: size {expr} is not a polynomial in the sequence "
                         f"length") from None
    if not all(c.is_integer for c in coeffs):
        raise InputError(f"{what}: size {expr} is not an integer polynomial")
    return tuple(int(c) for c in coeffs)


def poly_eval(p: tuple[int, ...], s: int) -> int:
    """Value of a :func:`poly` at S = ``s`` (Horner, exact ints)."""
    out = 0
    for c in reversed(p):
        out = out * s + c
    return out


def const_size(expr: sympy.Expr, what: str) -> int:
    p = poly(expr, what)
    if any(p[1:]):
        raise InputError(f"{what}: size {sympy.sympify(expr)} depends on the sequence length")
    return p[0]


class GraphWalker:
    """Look-ups over a :class:`TracedModel`: producers, consumers, live values, views."""

    def __init__(self, tm: TracedModel) -> None:
        self.tm = tm
        self.values = tm.values
        self.producer: dict[str, TNode] = {o: n for n in tm.nodes for o in n.outputs}
        self.consumers: dict[str, list[TNode]] = {}
        for n in tm.nodes:
            for i in n.inputs:
                if i is not None:
                    self.consumers.setdefault(i, []).append(n)
        self.live: set[str] = {tm.token_input}
        for n in tm.nodes:
            if n.op not in SHAPE_ONLY_OPS and any(i in self.live for i in n.inputs if i):
                self.live.update(n.outputs)
        self.root_of: dict[str, str] = {}

    def fail(self, node: TNode, what: str = "unsupported op") -> InputError:
        return InputError(f"{what} {node.source_op!r} (node {node.name}) in {self.tm.where}")

    def shape(self, v: str) -> tuple[sympy.Expr, ...]:
        value = self.values.get(v)
        if value is None or value.shape is None:
            node = self.producer.get(v)
            where = f" (node {node.name})" if node else ""
            raise InputError(f"unknown shape of tensor {v!r}{where} in {self.tm.where}")
        return value.shape

    def live_inputs(self, node: TNode) -> list[str]:
        return [i for i in node.inputs if i is not None and i in self.live]

    def root(self, v: str) -> str:
        """The value ``v`` is a view of: through movement nodes with one live input."""
        if v in self.root_of:
            return self.root_of[v]
        r, seen = v, []
        while True:
            node = self.producer.get(r)
            if node is None or node.op not in MOVEMENT_OPS:
                break
            live = self.live_inputs(node)
            if len(live) != 1:
                break
            seen.append(r)
            r = live[0]
        for s in seen:
            self.root_of[s] = r
        self.root_of[v] = r
        return r

    def param_of(self, v: str | None) -> str | None:
        """The parameter a constant operand is (through views of it), else None."""
        while v is not None:
            value = self.values.get(v)
            if value is not None and value.param is not None:
                return value.param
            node = self.producer.get(v)
            if node is None or node.op not in MOVEMENT_OPS or len(node.inputs) < 1:
                return None
            v = node.inputs[0]
        return None

    def ancestry(self, v: str, limit: int = 400) -> tuple[set[str], set[str]]:
        """Canonical ops of the constant subgraph that computes ``v``, and its leaf values."""
        ops: set[str] = set()
        leaves: set[str] = set()
        stack, seen = [v], set()
        while stack and len(seen) < limit:
            x = stack.pop()
            if x in seen or x is None:
                continue
            seen.add(x)
            node = self.producer.get(x)
            if node is None:
                leaves.add(x)
                continue
            ops.add(node.op)
            stack.extend(i for i in node.inputs if i is not None)
        return ops, leaves
