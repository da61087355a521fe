"""Shape rules of the supported ONNX ops over sympy sizes (used by onnx_import)."""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from ..errors import InputError
from .generic import S

if TYPE_CHECKING:
    from .onnx_import import _Importer

__all__ = ["HANDLERS", "V", "INT_TYPES", "MAX_VALUE_ELEMS", "int_value"]

#: Integer tensors up to this many elements are evaluated (shape arithmetic).
MAX_VALUE_ELEMS = 64
#: TensorProto element types that are integers or bool.
INT_TYPES = {2, 3, 4, 5, 6, 7, 9, 12, 13}
_BIG = 2 ** 62     # Slice bounds past this mean "to the end"

_UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Reciprocal": "reciprocal",
          "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf", "Sin": "sin", "Cos": "cos",
          "Relu": "relu", "Abs": "abs", "Gelu": "gelu", "FastGelu": "gelu",
          "Cast": "cast", "CastLike": "cast", "Identity": "identity", "Dropout": "identity",
          "Trilu": "trilu", "Not": "logical", "IsNaN": "compare", "IsInf": "compare",
          "Softmax": "softmax", "LogSoftmax": "softmax", "Floor": "unsupported",
          "Ceil": "unsupported"}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Max": "max",
           "Min": "min", "Where": "where", "Equal": "compare", "Less": "compare",
           "Greater": "compare", "LessOrEqual": "compare", "GreaterOrEqual": "compare",
           "And": "logical", "Or": "logical", "Xor": "logical", "Mod": "unsupported"}
_REDUCE = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max",
           "ReduceMin": "reduce_min"}
#: Opset from which each reduce op takes its axes as an input instead of an attribute.
_AXES_INPUT_FROM = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18}


class V:
    """A value during propagation: sympy shape, small-int contents, int flag, param key."""

    __slots__ = ("shape", "value", "is_int", "param")

    def __init__(self, shape: tuple | None, value: np.ndarray | None = None,
                 is_int: bool = False, param: str | None = None) -> None:
        self.shape, self.value, self.is_int, self.param = shape, value, is_int, param


def int_value(shape: tuple, arr: Any, is_int: bool) -> np.ndarray | None:
    """Contents of a small integer tensor as an object array of sympy Integers."""
    if not is_int or any(not _concrete(d) for d in shape):
        return None
    if prod(int(d) for d in shape) > MAX_VALUE_ELEMS:
        return None
    out = np.empty(tuple(int(d) for d in shape), dtype=object)
    for i, x in enumerate(np.asarray(arr).reshape(-1)):
        out.flat[i] = sympy.Integer(int(x))
    return out


def _concrete(d: Any) -> bool:
    return isinstance(d, int) or (isinstance(d, sympy.Basic) and d.is_Integer)


def _div(a: Any, b: Any) -> sympy.Expr:
    q = sympy.cancel(sympy.sympify(a) / sympy.sympify(b))
    return sympy.expand(q) if q.is_polynomial(S) else sympy.floor(q)


def _same(a: Any, b: Any) -> bool:
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def _bcast(imp: _Importer, node: Any, *shapes: tuple) -> tuple:
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(sympy.Integer(1),) * (rank - len(s)) + tuple(s) for s in shapes],
                    strict=True):
        d: Any = sympy.Integer(1)
        for x in dims:
            if _same(x, 1):
                continue
            if _same(d, 1):
                d = x
            elif not _same(d, x):
                raise InputError(f"shapes {', '.join(str(list(s)) for s in shapes)} of node "
                                 f"{node.name} ({node.op_type}) in {imp.where} do not broadcast")
        out.append(sympy.expand(d))
    return tuple(out)


def _axis(a: Any, rank: int) -> int:
    a = int(a)
    return a + rank if a < 0 else a


def _vals(ins: list[V]) -> list[np.ndarray] | None:
    return [v.value for v in ins] if all(v.value is not None for v in ins) else None


# -- handlers -------------------------------------------------------------------------------
def _unary(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    op = _UNARY[node.op_type]
    is_int = x.is_int
    if node.op_type == "Cast":
        is_int = imp.attr(node, "to") in INT_TYPES
    elif node.op_type == "CastLike":
        is_int = imp.get(node.input[1], node).is_int
    elif op in ("compare", "logical"):
        is_int = True
    value = x.value if op in ("cast", "identity") and is_int else None
    if value is not None and not x.is_int:      # a float constant cast to int
        if not all(v.is_Number for v in value.reshape(-1)):
            value = None
        else:
            value = np.vectorize(lambda v: sympy.Integer(int(v)), otypes=[object])(value)
    param = None
    if node.op_type == "Identity" and x.param is not None and imp.is_initializer(node.input[0]):
        param = node.output[0]      # exporters alias value-equal parameters by Identity
    outs = [V(x.shape, value, is_int, param)]
    if node.op_type == "Dropout":
        outs.append(V(x.shape, None, True))
    imp.emit(node, op, [node.input[0]], outs, {"axis": imp.attr(node, "axis", -1)})


def _binary(imp: _Importer, node: Any) -> None:
    ins = [imp.get(i, node) for i in node.input]
    shape = _bcast(imp, node, *[v.shape for v in ins])
    op = _BINARY[node.op_type]
    if op in ("compare", "logical"):
        is_int = True
    elif op == "where":
        is_int = ins[1].is_int
    else:
        is_int = all(v.is_int for v in ins)
    value = None
    vals = _vals(ins)
    if vals is not None and is_int and all(_concrete(d) for d in shape):
        value = _eval_binary(node.op_type, vals)
        if value is not None:
            value = np.broadcast_to(value, tuple(int(d) for d in shape)).copy()
    imp.emit(node, op, list(node.input), [V(shape, value, is_int)])


def _eval_binary(op: str, vals: list[np.ndarray]) -> np.ndarray | None:
    a = vals[0]
    b = vals[1] if len(vals) > 1 else None
    if op == "Add":
        return np.vectorize(lambda x, y: sympy.expand(x + y), otypes=[object])(a, b)
    if op == "Sub":
        return np.vectorize(lambda x, y: sympy.expand(x - y), otypes=[object])(a, b)
    if op == "Mul":
        return np.vectorize(lambda x, y: sympy.expand(x * y), otypes=[object])(a, b)
    if op == "Div":
        return np.vectorize(_div, otypes=[object])(a, b)
    if op == "Equal":
        return np.vectorize(lambda x, y: sympy.Integer(int(_same(x, y))), otypes=[object])(a, b)
    if op == "Where":
        c, x, y = vals
        if not all(_concrete(v) for v in np.asarray(c).reshape(-1)):
            return None
        return np.where(np.vectorize(lambda v: bool(int(v)))(c), x, y).astype(object)
    if op in ("Max", "Min") and all(_concrete(v) for arr in vals for v in arr.reshape(-1)):
        f = max if op == "Max" else min
        out = vals[0]
        for other in vals[1:]:
            out = np.vectorize(lambda x, y: sympy.Integer(f(int(x), int(y))),
                               otypes=[object])(out, other)
        return out
    return None


def _reduce(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    rank = len(x.shape)
    if imp.opset >= _AXES_INPUT_FROM[node.op_type]:
        axes = imp.ints(node.input[1], node, "axes") if len(node.input) > 1 and node.input[1] \
            else None
    else:
        axes = imp.attr(node, "axes")
    if not axes:
        if imp.attr(node, "noop_with_empty_axes", 0):
            axes = []
        else:
            axes = list(range(rank))
    axes = {_axis(a, rank) for a in axes}
    keep = imp.attr(node, "keepdims", 1)
    shape = tuple(sympy.Integer(1) if i in axes else d for i, d in enumerate(x.shape)
                  if keep or i not in axes)
    imp.emit(node, _REDUCE[node.op_type], [node.input[0]], [V(shape, None, x.is_int)],
             {"axes": sorted(axes)})


def _matmul(imp: _Importer, node: Any) -> None:
    a, b = imp.get(node.input[0], node), imp.get(node.input[1], node)
    sa, sb = list(a.shape), list(b.shape)
    if len(sa) < 1 or len(sb) < 1:
        raise imp.fail(node, "unsupported scalar operand of")
    drop_a, drop_b = len(sa) == 1, len(sb) == 1
    if drop_a:
        sa = [sympy.Integer(1)] + sa
    if drop_b:
        sb = sb + [sympy.Integer(1)]
    if not _same(sa[-1], sb[-2]):
        raise InputError(f"matmul shapes {sa} x {sb} of node {node.name} in {imp.where} "
                         f"do not match")
    shape = _bcast(imp, node, tuple(sa[:-2]), tuple(sb[:-2])) + (sa[-2], sb[-1])
    if drop_a:
        shape = shape[:-2] + shape[-1:]
    if drop_b:
        shape = shape[:-1]
    imp.emit(node, "matmul", [node.input[0], node.input[1]], [V(tuple(shape))])


def _gemm(imp: _Importer, node: Any) -> None:
    a, b = imp.get(node.input[0], node), imp.get(node.input[1], node)
    if imp.attr(node, "transA", 0) or len(a.shape) != 2 or len(b.shape) != 2:
        raise imp.fail(node, "unsupported transposed-A or non-2-D")
    n = b.shape[0] if imp.attr(node, "transB", 0) else b.shape[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    imp.emit(node, "linear", [node.input[0], node.input[1], bias], [V((a.shape[0], n))])


def _gather(imp: _Importer, node: Any) -> None:
    data, idx = imp.get(node.input[0], node), imp.get(node.input[1], node)
    axis = _axis(imp.attr(node, "axis", 0), len(data.shape))
    shape = data.shape[:axis] + idx.shape + data.shape[axis + 1:]
    value = None
    if data.value is not None and idx.value is not None:
        ids = np.vectorize(lambda i: int(i), otypes=[object])(idx.value) if all(
            _concrete(i) for i in idx.value.reshape(-1)) else None
        if ids is not None:
            dim = int(data.shape[axis])
            ids = np.vectorize(lambda i: i + dim if i < 0 else i)(ids).astype(np.int64)
            value = np.take(data.value, ids, axis=axis)
    if not data.is_int and axis == 0 and idx.value is None:
        op = "embedding"        # a row lookup from a table (generic checks it is a weight)
    else:
        op = "select"
    imp.emit(node, op, [node.input[0], node.input[1]], [V(shape, value, data.is_int)])


def _shape(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    dims = list(x.shape)
    start, end = imp.attr(node, "start", 0), imp.attr(node, "end", None)
    dims = dims[start:end] if end is not None else dims[start:]
    value = np.empty(len(dims), dtype=object)
    for i, d in enumerate(dims):
        value[i] = d
    imp.emit(node, "shape", [node.input[0]], [V((sympy.Integer(len(dims)),), value, True)])


def _size(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    value = np.empty((), dtype=object)
    value[()] = sympy.expand(prod(x.shape, start=sympy.Integer(1)))
    imp.emit(node, "shape", [node.input[0]], [V((), value, True)])


def _reshape_target(imp: _Importer, node: Any, shape: tuple, target: list[Any]) -> tuple:
    allowzero = imp.attr(node, "allowzero", 0)
    out: list[Any] = []
    for i, t in enumerate(target):
        if _same(t, 0) and not allowzero:
            out.append(shape[i])
        else:
            out.append(sympy.expand(t))
    if any(_same(t, -1) for t in out):
        known = prod((t for t in out if not _same(t, -1)), start=sympy.Integer(1))
        total = prod(shape, start=sympy.Integer(1))
        out = [_div(total, known) if _same(t, -1) else t for t in out]
    return tuple(out)


def _reshape(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    shape = _reshape_target(imp, node, x.shape, imp.ints(node.input[1], node, "Reshape target"))
    value = x.value.reshape(tuple(int(d) for d in shape)) if x.value is not None else None
    imp.emit(node, "view", [node.input[0]], [V(shape, value, x.is_int)])


def _flatten(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    axis = _axis(imp.attr(node, "axis", 1), len(x.shape))
    shape = (sympy.expand(prod(x.shape[:axis], start=sympy.Integer(1))),
             sympy.expand(prod(x.shape[axis:], start=sympy.Integer(1))))
    imp.emit(node, "view", [node.input[0]], [V(shape, None, x.is_int)])


def _axes_arg(imp: _Importer, node: Any) -> list[Any] | None:
    if len(node.input) > 1 and node.input[1]:
        return imp.ints(node.input[1], node, "axes")
    return imp.attr(node, "axes")


def _squeeze(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    axes = _axes_arg(imp, node)
    rank = len(x.shape)
    drop = ({_axis(a, rank) for a in axes} if axes is not None
            else {i for i, d in enumerate(x.shape) if _same(d, 1)})
    shape = tuple(d for i, d in enumerate(x.shape) if i not in drop)
    value = x.value.reshape(tuple(int(d) for d in shape)) if x.value is not None else None
    imp.emit(node, "view", [node.input[0]], [V(shape, value, x.is_int)])


def _unsqueeze(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    axes = _axes_arg(imp, node) or []
    rank = len(x.shape) + len(axes)
    ins = {_axis(a, rank) for a in axes}
    it = iter(x.shape)
    shape = tuple(sympy.Integer(1) if i in ins else next(it) for i in range(rank))
    value = x.value.reshape(tuple(int(d) for d in shape)) if x.value is not None else None
    imp.emit(node, "view", [node.input[0]], [V(shape, value, x.is_int)])


def _transpose(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    perm = imp.attr(node, "perm") or list(range(len(x.shape)))[::-1]
    shape = tuple(x.shape[p] for p in perm)
    value = np.transpose(x.value, perm) if x.value is not None else None
    imp.emit(node, "transpose", [node.input[0]], [V(shape, value, x.is_int)])


def _expand(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    target = tuple(imp.ints(node.input[1], node, "Expand shape"))
    shape = _bcast(imp, node, x.shape, target)
    value = None
    if x.value is not None and all(_concrete(d) for d in shape):
        value = np.broadcast_to(x.value, tuple(int(d) for d in shape)).copy()
    imp.emit(node, "expand", [node.input[0]], [V(shape, value, x.is_int)])


def _tile(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    reps = imp.ints(node.input[1], node, "Tile repeats")
    shape = tuple(sympy.expand(d * r) for d, r in zip(x.shape, reps, strict=True))
    imp.emit(node, "expand", [node.input[0]], [V(shape, None, x.is_int)])


def _concat(imp: _Importer, node: Any) -> None:
    ins = [imp.get(i, node) for i in node.input if i]
    rank = len(ins[0].shape)
    axis = _axis(imp.attr(node, "axis", 0), rank)
    shape = list(ins[0].shape)
    shape[axis] = sympy.expand(sum((v.shape[axis] for v in ins), start=sympy.Integer(0)))
    vals = _vals(ins)
    value = np.concatenate(vals, axis=axis) if vals is not None else None
    imp.emit(node, "concat", [i for i in node.input if i],
             [V(tuple(shape), value, ins[0].is_int)])


def _split(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    axis = _axis(imp.attr(node, "axis", 0), len(x.shape))
    if len(node.input) > 1 and node.input[1]:
        sizes = imp.ints(node.input[1], node, "split sizes")
    else:
        sizes = imp.attr(node, "split") or [_div(x.shape[axis], len(node.output))] * len(
            node.output)
    outs = []
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = sympy.expand(sympy.sympify(s))
        outs.append(V(tuple(shape), None, x.is_int))
    imp.emit(node, "split", [node.input[0]], outs)


def _slice(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    rank = len(x.shape)
    if imp.opset < 10:
        starts, ends = imp.attr(node, "starts"), imp.attr(node, "ends")
        axes, steps = imp.attr(node, "axes"), None
    else:
        def opt(i: int) -> list[Any] | None:
            return (imp.ints(node.input[i], node, "Slice bounds")
                    if len(node.input) > i and node.input[i] else None)
        starts, ends, axes, steps = opt(1), opt(2), opt(3), opt(4)
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    shape = list(x.shape)
    index: list[Any] = [slice(None)] * rank
    for a, st, en, sp in zip(axes, starts, ends, steps, strict=True):
        ax = _axis(a, rank)
        d = x.shape[ax]
        st, en = (_bound(v, d) for v in (st, en))
        if not _concrete(sp) or int(sp) not in (1, -1):
            if not all(_concrete(v) for v in (st, en, d)):
                raise imp.fail(node, "unsupported strided slice on a symbolic axis in")
            length = len(range(int(st), int(en), int(sp)))
        else:
            length = sympy.expand(en - st) if int(sp) == 1 else sympy.expand(st - en)
        shape[ax] = length
        if all(_concrete(v) for v in (st, en, sp)):
            index[ax] = slice(int(st), int(en), int(sp))
    value = x.value[tuple(index)] if x.value is not None else None
    imp.emit(node, "slice", [node.input[0]], [V(tuple(shape), value, x.is_int)])


def _bound(v: Any, d: Any) -> Any:
    """A Slice start/end in [0, d]: negatives count from the end, huge ends mean d."""
    if _concrete(v):
        i = int(v)
        if i >= _BIG or i <= -_BIG:
            return d if i > 0 else sympy.Integer(0)
        if i < 0:
            return sympy.expand(d + i)
        if _concrete(d):
            return sympy.Integer(min(i, int(d)))
        return sympy.Integer(i)     # assumed within a symbolic axis
    return sympy.expand(v)


def _range(imp: _Importer, node: Any) -> None:
    start, limit, delta = (imp.get(i, node) for i in node.input)
    vals = _vals([start, limit, delta])
    if vals is None:
        raise InputError(f"Range bounds of node {node.name} in {imp.where} are computed "
                         f"from data; only shape arithmetic is supported")
    s0, l0, d0 = (sympy.sympify(v.reshape(-1)[0]) for v in vals)
    n = _div(l0 - s0, d0) if _same(d0, 1) or not all(map(_concrete, (s0, l0, d0))) else \
        sympy.Integer(len(range(int(s0), int(l0), int(d0))))
    value = None
    if start.is_int and _concrete(n) and all(map(_concrete, (s0, d0))) and \
            int(n) <= MAX_VALUE_ELEMS:
        value = int_value((n,), [int(s0) + i * int(d0) for i in range(int(n))], True)
    imp.emit(node, "range", list(node.input), [V((sympy.expand(n),), value, start.is_int)])


def _constant_of_shape(imp: _Importer, node: Any) -> None:
    from onnx import numpy_helper
    shape = tuple(imp.ints(node.input[0], node, "ConstantOfShape shape"))
    t = imp.attr(node, "value")
    is_int = t is not None and t.data_type in INT_TYPES
    value = None
    if is_int and all(_concrete(d) for d in shape):
        fill = numpy_helper.to_array(t).reshape(-1)[0]
        value = int_value(shape, np.full(tuple(int(d) for d in shape), fill), True)
    imp.emit(node, "full", [], [V(shape, value, is_int)])


def _constant(imp: _Importer, node: Any) -> None:
    from onnx import numpy_helper
    t = imp.attr(node, "value")
    if t is not None:
        arr, is_int = numpy_helper.to_array(t), t.data_type in INT_TYPES
    elif imp.attr(node, "value_int") is not None or imp.attr(node, "value_ints") is not None:
        v = imp.attr(node, "value_int")
        arr, is_int = np.array(v if v is not None else imp.attr(node, "value_ints")), True
    else:
        v = imp.attr(node, "value_float")
        arr, is_int = np.array(v if v is not None else imp.attr(node, "value_floats") or 0.0), False
    shape = tuple(sympy.Integer(d) for d in arr.shape)
    value = int_value(shape, arr, is_int)
    if not is_int and arr.size <= MAX_VALUE_ELEMS:     # kept for a later cast to int
        value = np.vectorize(lambda v: sympy.Float(float(v)), otypes=[object])(arr) \
            if arr.size else None
    imp.emit(node, "constant", [], [V(shape, value, is_int)])


def _layer_norm(imp: _Importer, node: Any) -> None:
    x = imp.get(node.input[0], node)
    rank = len(x.shape)
    axis = _axis(imp.attr(node, "axis", -1), rank)
    stat = tuple(d if i < axis else sympy.Integer(1) for i, d in enumerate(x.shape))
    op = "layer_norm" if node.op_type == "LayerNormalization" else "rms_norm"
    ins = [node.input[0]] + [i for i in node.input[1:3 if op == "layer_norm" else 2] if i]
    imp.emit(node, op, ins, [V(x.shape)] + [V(stat)] * (len(node.output) - 1))


def _einsum(imp: _Importer, node: Any) -> None:
    eq = imp.attr(node, "equation")
    eq = (eq.decode() if isinstance(eq, bytes) else str(eq)).replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    sizes: dict[str, Any] = {}
    for term, name in zip(lhs.split(","), node.input, strict=True):
        shape = imp.get(name, node).shape
        if "..." in term or len(term) != len(shape):
            raise imp.fail(node, "unsupported einsum form of")
        sizes.update(zip(term, shape, strict=True))
    if not rhs:
        rhs = "".join(sorted(c for c in sizes if lhs.count(c) == 1))
    imp.emit(node, "einsum", list(node.input), [V(tuple(sizes[c] for c in rhs))])


HANDLERS: dict[str, Callable[[Any, Any], None]] = {
    **dict.fromkeys(_UNARY, _unary), **dict.fromkeys(_BINARY, _binary),
    **dict.fromkeys(_REDUCE, _reduce),
    "MatMul": _matmul, "Gemm": _gemm, "Gather": _gather, "Shape": _shape, "Size": _size,
    "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Transpose": _transpose, "Expand": _expand, "Tile": _tile, "Concat": _concat,
    "Split": _split, "Slice": _slice, "Range": _range, "ConstantOfShape": _constant_of_shape,
    "Constant": _constant, "LayerNormalization": _layer_norm,
    "SimplifiedLayerNormalization": _layer_norm, "RMSNormalization": _layer_norm,
    "Einsum": _einsum,
}
