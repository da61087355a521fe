"""Op patterns of a traced model: the node list of a TracedModel -> OpTemplates."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import sympy

from .generic import (
    ALLOWED_IN_PATTERN,
    CONSTANT_ONLY_OPS,
    ELEMENTWISE_OPS,
    MOVEMENT_OPS,
    REDUCE_OPS,
    SHAPE_ONLY_OPS,
    GraphWalker,
    Recognised,
    S,
    TNode,
    TracedModel,
)
from .templates import build_templates

__all__ = ["recognise", "layer_of"]

_LAYER_RE = re.compile(r"(?:^|[./])(\d+)(?=[./]|$)")


@dataclass
class _Unit:
    """A group of nodes that becomes one op (or three, for an attention core)."""

    kind: str                      # matmul, embed, attn_mm, sdpa, region, multi
    nodes: list[TNode] = field(default_factory=list)
    source: str | None = None      # region: the value every node derives from
    weight: str | None = None      # matmul/embed: the parameter value
    bias: str | None = None        # matmul: the bias parameter value
    cls: str = ""                  # region/multi: the recognised pattern
    absorbed_into: _Unit | None = None


def layer_of(scope: str) -> int:
    m = _LAYER_RE.search(scope)
    return int(m.group(1)) if m else -1


class _Recogniser:
    """One pass over the nodes (units), classification, attention cores, templates."""

    def __init__(self, tm: TracedModel) -> None:
        self.tm = tm
        self.w = GraphWalker(tm)
        self.units: list[_Unit] = []
        self.unit_of: dict[str, _Unit] = {}       # live value (a root) -> its unit
        self.src: dict[str, str] = {}             # live value -> region source
        self.regions: dict[str, _Unit] = {}       # source value -> region unit

    # -- pass 1: units --------------------------------------------------------------------
    def source(self, v: str) -> str:
        r = self.w.root(v)
        return self.src.get(r, r)

    def new_unit(self, kind: str, node: TNode, **kw) -> _Unit:
        unit = _Unit(kind=kind, nodes=[node], **kw)
        self.units.append(unit)
        for o in node.outputs:
            self.unit_of[o] = unit
        return unit

    def param_value(self, v: str | None) -> str | None:
        """The value holding the parameter a constant operand views, else None."""
        w = self.w
        while v is not None:
            value = w.values.get(v)
            if value is not None and value.param is not None and not value.is_int:
                return v
            node = w.producer.get(v)
            if node is not None and node.op == "embedding" and v not in w.live:
                v = node.inputs[0]           # a table lookup by positions: the table
                continue
            if node is None or node.op not in MOVEMENT_OPS or not node.inputs:
                return None
            v = node.inputs[0]
        return None

    def sole_consumer(self, v: str, node: TNode) -> bool:
        """``node`` is the only consumer of ``v`` (looking through views of it)."""
        users = [u for u in self.w.consumers.get(v, []) if u.op not in SHAPE_ONLY_OPS]
        if len(users) != 1:
            return False
        u = users[0]
        if u is node:
            return True
        return u.op in MOVEMENT_OPS and len(u.outputs) == 1 and self.sole_consumer(
            u.outputs[0], node)

    def walk(self) -> None:
        w = self.w
        for node in self.tm.nodes:
            live = w.live_inputs(node)
            if not live or node.op in SHAPE_ONLY_OPS:
                continue
            if node.op in CONSTANT_ONLY_OPS:
                raise w.fail(node)
            if node.op in MOVEMENT_OPS and (len(live) == 1 or node.op != "concat"):
                if len(live) != 1:
                    raise w.fail(node)
                continue
            if node.op == "embedding":
                table = self.param_value(node.inputs[0])
                if table is None or node.inputs[0] in w.live:
                    raise w.fail(node, "unsupported gather (not from a weight table)")
                self.new_unit("embed", node, weight=table)
            elif node.op in ("linear", "matmul"):
                self.weight_or_attention(node, live)
            elif node.op == "sdpa":
                self.new_unit("sdpa", node)
            elif node.op in ELEMENTWISE_OPS or node.op in REDUCE_OPS or node.op == "concat":
                self.elementwise(node, live)
            else:
                raise w.fail(node)

    def weight_or_attention(self, node: TNode, live: list[str]) -> None:
        w = self.w
        a, b = node.inputs[0], node.inputs[1]
        if node.op == "matmul" and a in w.live and b in w.live:
            self.new_unit("attn_mm", node)
            return
        weight = self.param_value(b)
        if a not in w.live or weight is None:
            raise w.fail(node, "unsupported matmul operands (weight must be the right-hand "
                               "parameter) in")
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        bias_value = self.param_value(bias) if bias else None
        if bias is not None and bias_value is None:
            raise w.fail(node, "unsupported non-parameter bias of")
        self.new_unit("matmul", node, weight=weight, bias=bias_value)

    def elementwise(self, node: TNode, live: list[str]) -> None:
        w = self.w
        if node.op == "add" and len(live) == 1:     # bias of the matmul it follows
            x = live[0]
            other = next((i for i in node.inputs if i is not None and i != x), None)
            unit = self.unit_of.get(w.root(x))
            p = self.param_value(other)
            if (unit is not None and unit.kind == "matmul" and unit.bias is None
                    and p is not None and self.sole_consumer(w.root(x), node)):
                n_out = w.shape(w.root(x))[-1]
                if sympy.simplify(w.values[p].numel - n_out) == 0:
                    unit.bias = p
                    unit.nodes.append(node)
                    w.root_of[node.outputs[0]] = w.root(x)
                    return
        sources = {self.source(i) for i in live}
        if len(sources) == 1:
            key = sources.pop()
            unit = self.regions.get(key)
            if unit is None:
                unit = self.regions[key] = _Unit(kind="region", source=key)
                self.units.append(unit)
            unit.nodes.append(node)
            for o in node.outputs:
                self.unit_of[o] = unit
                self.src[o] = key
        else:
            self.new_unit("multi", node)

    # -- pass 2: classify element-wise groups ---------------------------------------------
    def classify(self) -> None:
        for unit in self.units:
            if unit.kind == "region":
                unit.cls = self.region_class(unit)
            elif unit.kind == "multi":
                op = unit.nodes[0].op
                classes = {"add": "add", "sub": "add", "mul": "mul2", "div": "add",
                           "concat": "reshape", "max": "add", "min": "add"}
                if op not in classes:
                    raise self.w.fail(unit.nodes[0])
                unit.cls = classes[op]
        for unit in self.units:     # silu(gate) * up: the SwiGLU product absorbs the silu
            if unit.kind != "multi" or unit.cls != "mul2":
                continue
            for v in self.w.live_inputs(unit.nodes[0]):
                prod_in = self.unit_of.get(self.w.root(v))
                if (prod_in is not None and prod_in.cls == "silu"
                        and prod_in.absorbed_into is None
                        and self.sole_consumer(self.w.root(v), unit.nodes[0])):
                    prod_in.absorbed_into = unit
                    unit.cls = "silu_mul"
                    break
            else:
                unit.cls = "add"

    def region_class(self, unit: _Unit) -> str:
        ops = Counter(n.op for n in unit.nodes)
        w = self.w
        if ops["rms_norm"]:
            cls = "rmsnorm"
        elif ops["layer_norm"]:
            cls = "layernorm"
        elif ops["softmax"] or (ops["exp"] and ops["reduce_sum"]):
            cls = "softmax"
        elif any(ops[r] for r in REDUCE_OPS):
            if ops["reduce_mean"] and ops["sub"]:
                cls = "layernorm"
            elif ops["reduce_mean"] and (ops["rsqrt"] or ops["sqrt"]):
                cls = "rmsnorm"
            else:
                node = next(n for n in unit.nodes if n.op in REDUCE_OPS)
                raise w.fail(node, "unsupported reduction")
        elif ops["gelu"] or ops["erf"] or ops["tanh"]:
            cls = "gelu"
        elif ops["silu"] or ops["sigmoid"]:
            cls = "silu"
        elif ops["mul"] and ops["add"] and self.has_position_table(unit):
            cls = "rope"
        else:
            cls = "arith"
        allowed = ALLOWED_IN_PATTERN[cls]
        for n in unit.nodes:
            if n.op not in allowed:
                raise w.fail(n)
        return cls

    def constant_operands(self, unit: _Unit) -> list[str]:
        """Non-live tensor operands of a group's nodes (weights, tables, masks; no scalars)."""
        out = []
        for n in unit.nodes:
            for i in n.inputs:
                if i is None or i in self.w.live:
                    continue
                v = self.w.values.get(i)
                if v is None or v.shape is None or not v.shape:
                    continue
                if sympy.expand(v.numel) == 1:
                    continue
                out.append(i)
        return out

    def has_position_table(self, unit: _Unit) -> bool:
        return any(S in sympy.sympify(self.w.values[i].numel).free_symbols
                   for i in self.constant_operands(unit)
                   if any(n.op == "mul" and i in n.inputs for n in unit.nodes))

    def causal_mask(self, values: list[str]) -> bool:
        """Is a mask on the attention scores causal?

        Yes when it is built with triu/tril or by comparing position ranges, or when it is
        a [..., S, S] table that no graph input besides the tokens feeds (a precomputed
        causal buffer: a padding mask comes from an ``attention_mask`` input).
        """
        for v in values:
            ops, leaves = self.w.ancestry(v)
            if "trilu" in ops or ("compare" in ops and "range" in ops):
                return True
            shape = self.w.values[v].shape or ()
            if (len(shape) >= 2 and not leaves & set(self.tm.aux_inputs)
                    and all(S in sympy.sympify(d).free_symbols for d in shape[-2:])):
                return True
        return False


def recognise(tm: TracedModel) -> Recognised:
    """Map a traced model onto op templates (rules: :mod:`explorer.workloads.generic`)."""
    if not isinstance(tm, TracedModel):
        raise TypeError(f"tm must be a TracedModel, not {type(tm).__name__}")
    r = _Recogniser(tm)
    r.walk()
    r.classify()
    return build_templates(r)

