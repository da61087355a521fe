"""torch ``nn.Module`` -> TracedModel: built on the meta device, traced with torch.export.

A spec names a module and a callable in it: ``pkg.module:Class``, ``pkg.module:factory``,
``path/to/file.py:Class``, optionally with keyword arguments as Python or JSON literals:
``pkg.module:Class(layers=4, tie=True)`` or ``pkg.module:Class({"layers": 4})``. The
callable is called under ``torch.device("meta")``, so no weight is materialised (an 8B
model costs no memory), and ``forward(input_ids)`` with ``input_ids`` of shape
``[1, S]`` (int64) is traced by ``torch.export.export`` with the sequence axis dynamic
(``Dim.AUTO``): every shape comes back as a polynomial in S. A module whose code fixes
the length (the exporter specialises S) is traced at three lengths instead and each
dimension fitted as ``a S + b`` (the third length checks the fit).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import operator
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import sympy

from ..errors import InputError
from .generic import S, TNode, TracedModel, TValue
from .imported import ImportedWorkload
from .patterns import recognise

__all__ = ["TORCH_SPEC_RE", "is_torch_spec", "trace_module", "load_module_spec",
           "load_torch_workload"]

#: ``module:attr`` with an optional ``(...)`` argument list.
TORCH_SPEC_RE = re.compile(r"^(?P<mod>[^:()\s]+?):(?P<attr>[A-Za-z_][\w.]*)(?P<call>\(.*\))?$",
                           re.DOTALL)
#: Sequence lengths of the fallback traces (distinct, small, none a power of two).
_FIT_LENGTHS = (5, 7, 11)
#: Trace length of the dynamic export (the value does not matter on the meta device).
_TRACE_LEN = 17

# aten packet name -> canonical op (generic.py); positions of tensor inputs where they matter.
_SAME = ("silu", "gelu", "sigmoid", "tanh", "erf", "exp", "log", "sqrt", "rsqrt", "reciprocal",
         "neg", "cos", "sin", "relu", "abs", "add", "sub", "mul", "div", "pow", "where",
         "masked_fill", "softmax")
_CANON: dict[str, str] = {name: name for name in _SAME}
_CANON.update({
    "rsub": "sub", "maximum": "max", "minimum": "min", "_softmax": "softmax",
    "_safe_softmax": "softmax", "log_softmax": "softmax", "_log_softmax": "softmax",
    "true_divide": "div", "square": "pow",
    "mean": "reduce_mean", "var_mean": "reduce_mean", "sum": "reduce_sum", "amax": "reduce_max",
    "amin": "reduce_min",
    "mm": "matmul", "bmm": "matmul", "matmul": "matmul",
    "view": "view", "reshape": "view", "_unsafe_view": "view", "flatten": "view",
    "unflatten": "view", "squeeze": "view", "unsqueeze": "view", "as_strided": "view",
    "view_as": "view", "reshape_as": "view",
    "transpose": "transpose", "permute": "transpose", "t": "transpose", "swapaxes": "transpose",
    "expand": "expand", "expand_as": "expand", "repeat": "expand", "repeat_interleave": "expand",
    "slice": "slice", "narrow": "slice", "select": "select", "index_select": "select",
    "index": "select", "cat": "concat", "concat": "concat", "stack": "concat",
    "split": "split", "split_with_sizes": "split", "chunk": "split", "unbind": "split",
    "contiguous": "identity", "clone": "identity", "_to_copy": "cast", "to": "cast",
    "type_as": "cast", "alias": "identity", "detach": "identity", "dropout": "identity",
    "lift_fresh_copy": "identity", "copy": "identity",
    "arange": "range", "full": "full", "ones": "full", "zeros": "full", "empty": "full",
    "scalar_tensor": "full", "new_ones": "like", "new_zeros": "like", "new_full": "like",
    "new_empty": "like", "zeros_like": "like", "ones_like": "like", "full_like": "like",
    "empty_like": "like", "triu": "trilu", "tril": "trilu",
    "lt": "compare", "le": "compare", "gt": "compare", "ge": "compare", "eq": "compare",
    "ne": "compare", "logical_and": "logical", "logical_or": "logical", "logical_not": "logical",
    "bitwise_and": "logical", "bitwise_or": "logical", "bitwise_not": "logical",
    "outer": "einsum", "einsum": "einsum",
    "sym_size": "shape", "sym_numel": "shape", "sym_stride": "shape",
})
_SDPA = ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
         "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention")
_SKIP = re.compile(r"^(_assert|_functional_assert|sym_constrain|_check|_print)")


def is_torch_spec(spec: str) -> bool:
    """``spec`` looks like ``module:Callable[(...)]`` (and not a .json/.onnx path)."""
    m = TORCH_SPEC_RE.match(spec.strip())
    if m is None:
        return False
    mod = m.group("mod")
    return mod.endswith(".py") or re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", mod) is not None


def _literal(node: ast.AST, spec: str) -> Any:
    names = {"true": True, "false": False, "null": None}
    node = ast.fix_missing_locations(_JsonNames(names).visit(node))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise InputError(f"{spec}: arguments must be literals (numbers, strings, lists, "
                         f"dicts, True/False/None)") from None


class _JsonNames(ast.NodeTransformer):
    """JSON's true/false/null as Python constants inside an argument list."""

    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            return ast.Constant(self.names[node.id])
        return node


def _kwargs(call: str | None, spec: str) -> dict[str, Any]:
    if not call:
        return {}
    try:
        tree = ast.parse("f" + call, mode="eval").body
    except SyntaxError as e:
        raise InputError(f"{spec}: malformed argument list ({e.msg})") from None
    assert isinstance(tree, ast.Call)
    kwargs: dict[str, Any] = {}
    for arg in tree.args:
        value = _literal(arg, spec)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise InputError(f"{spec}: positional arguments must be one JSON object of "
                             f"keyword arguments")
        kwargs.update(value)
    for kw in tree.keywords:
        if kw.arg is None:
            raise InputError(f"{spec}: **expansions are not supported in the argument list")
        kwargs[kw.arg] = _literal(kw.value, spec)
    return kwargs


def load_module_spec(spec: str) -> tuple[Any, str]:
    """Build the module of ``spec`` on the meta device: (module, display name)."""
    import torch
    from torch import nn

    m = TORCH_SPEC_RE.match(spec.strip())
    if m is None:
        raise InputError(f"malformed module spec {spec!r} (expected module:Class or "
                         f"file.py:Class, optionally with (key=value, ...))")
    mod_name, attr, call = m.group("mod"), m.group("attr"), m.group("call")
    kwargs = _kwargs(call, spec)
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name)
            if not path.is_file():
                raise InputError(f"module file not found: {path}")
            unique = f"_llm2silicon_import_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(unique, path)
            if module_spec is None or module_spec.loader is None:
                raise InputError(f"cannot import {path}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except InputError:
        raise
    except ModuleNotFoundError as e:
        raise InputError(f"cannot import module {mod_name!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - user code: any failure is bad input
        raise InputError(f"importing {mod_name} failed: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{mod_name}:{attr} is not callable")
    try:
        with torch.device("meta"):
            model = obj(**kwargs)
    except Exception as e:  # noqa: BLE001 - user code
        raise InputError(f"{spec}: building the module failed: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval(), getattr(obj, "__name__", attr)


def _export(model: Any, length: int, dynamic: bool, spec: str) -> Any:
    import torch
    from torch.export import Dim

    with torch.device("meta"):
        ids = torch.zeros((1, length), dtype=torch.long)
        try:
            return torch.export.export(model, (ids,), strict=False,
                                       dynamic_shapes=({1: Dim.AUTO},) if dynamic else None)
        except Exception as e:  # noqa: BLE001 - user code or an untraceable module
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise InputError(f"{spec}: torch.export failed: {type(e).__name__}: {msg}") from None


def _scope(node: Any) -> str:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = str(list(stack.values())[-1][0])
    path = re.sub(r"^L\['self'\]\.?", "", path)
    path = re.sub(r"\[['\"]?([^\]'\"]+)['\"]?\]", r".\1", path)
    return path.strip(".")


class _Converter:
    """One exported program -> nodes and values with concrete or symbolic shapes."""

    def __init__(self, ep: Any, model: Any, spec: str) -> None:
        self.ep, self.spec = ep, spec
        self.values: dict[str, Any] = {}        # name -> (shape tuple, is_int, param key)
        self.nodes: list[tuple[str, str, str, tuple, tuple, str, dict]] = []
        self.token_input = ""
        self.outputs: tuple[str, ...] = ()
        ids: dict[int, str] = {}
        self.param_key: dict[str, str] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            self.param_key[name] = ids.setdefault(id(p), name)

    @staticmethod
    def is_tensor(v: Any) -> bool:
        import torch
        return isinstance(v, torch.Tensor)

    def add_value(self, name: str, val: Any, param: str | None = None) -> None:
        import torch
        if self.is_tensor(val):
            self.values[name] = (tuple(val.shape), not torch.is_floating_point(val), param)

    def run(self) -> None:
        from torch.export.graph_signature import InputKind

        kinds = {s.arg.name: s for s in self.ep.graph_signature.input_specs}
        for node in self.ep.graph.nodes:
            val = node.meta.get("val")
            if node.op == "placeholder":
                spec = kinds.get(node.name)
                param = None
                if spec is not None and spec.kind == InputKind.PARAMETER:
                    param = self.param_key.get(spec.target, spec.target)
                elif spec is not None and spec.kind == InputKind.USER_INPUT and not self.token_input:
                    self.token_input = node.name
                self.add_value(node.name, val, param)
            elif node.op == "call_function":
                self.call(node, val)
            elif node.op == "output":
                self.outputs = tuple(a.name for a in _flat(node.args) if a.name in self.values)
            elif node.op == "get_attr":
                self.add_value(node.name, val)

    def call(self, node: Any, val: Any) -> None:
        target = node.target
        if target is operator.getitem:
            src, index = node.args
            name = f"{src.name}#{index}"
            if name in self.values:
                self.add_value(node.name, val)
                self.nodes.append((node.name, "getitem", "identity", (name,), (node.name,),
                                   _scope(node), {}))
            return
        packet = getattr(getattr(target, "_overloadpacket", None), "__name__", None)
        source_op = str(target)
        if packet is None or _SKIP.match(packet):
            return
        if isinstance(val, (tuple, list)):
            outs = []
            for i, v in enumerate(val):
                self.add_value(f"{node.name}#{i}", v)
                outs.append(f"{node.name}#{i}")
            outputs = tuple(outs)
        elif self.is_tensor(val):
            self.add_value(node.name, val)
            outputs = (node.name,)
        else:
            return                               # SymInt/scalar arithmetic
        tensors = [a.name for a in _flat(node.args) + _flat(list(node.kwargs.values()))
                   if a.name in self.values]
        attrs: dict[str, Any] = {}
        if packet == "linear":
            op, inputs = "linear", tuple(_arg(node, i) for i in range(3))
        elif packet == "addmm":
            op, inputs = "linear", (_arg(node, 1), _arg(node, 2), _arg(node, 0))
        elif packet == "embedding":
            op, inputs = "embedding", (_arg(node, 0), _arg(node, 1))
        elif packet in _SDPA:
            op = "sdpa"
            mask = node.kwargs.get("attn_mask")
            mask_i = 5 if packet == "_scaled_dot_product_flash_attention_for_cpu" else 3
            if mask is None and len(node.args) > mask_i and packet != "_scaled_dot_product_flash_attention":
                mask = node.args[mask_i]
            inputs = (_arg(node, 0), _arg(node, 1), _arg(node, 2),
                      mask.name if hasattr(mask, "name") else None)
            causal_i = 4 if packet.startswith("_scaled_dot_product_flash") else 5
            if packet == "_scaled_dot_product_efficient_attention":
                causal_i = 6
            causal = node.kwargs.get("is_causal", node.args[causal_i]
                                     if len(node.args) > causal_i else False)
            attrs["is_causal"] = bool(causal)
            outputs = outputs[:1]
        elif packet == "layer_norm" or packet == "native_layer_norm":
            op, inputs = "layer_norm", (_arg(node, 0), _arg(node, 2), _arg(node, 3))
            outputs = outputs[:1]
        elif packet == "rms_norm":
            op, inputs = "rms_norm", (_arg(node, 0), _arg(node, 2))
        else:
            op, inputs = _CANON.get(packet, "unsupported"), tuple(tensors)
        inputs = tuple(i for i in inputs)
        self.nodes.append((node.name, source_op, op, inputs, outputs, _scope(node), attrs))


def _flat(args: Any) -> list[Any]:
    out: list[Any] = []
    for a in args if isinstance(args, (list, tuple)) else [args]:
        if isinstance(a, (list, tuple)):
            out.extend(_flat(a))
        elif hasattr(a, "op") and hasattr(a, "name"):
            out.append(a)
    return out


def _arg(node: Any, i: int) -> str | None:
    a = node.args[i] if len(node.args) > i else None
    return a.name if hasattr(a, "name") and hasattr(a, "op") else None


def _symbolic(conv: _Converter, spec: str) -> dict[str, TValue]:
    """Shapes of a dynamic export: SymInts -> polynomials in S."""
    import torch
    seq = conv.values[conv.token_input][0][1]
    sym = seq.node.expr if isinstance(seq, torch.SymInt) else None
    out = {}
    for name, (shape, is_int, param) in conv.values.items():
        dims = []
        for d in shape:
            if isinstance(d, torch.SymInt):
                e = d.node.expr
                e = e.subs(sym, S) if sym is not None else e
                if e.free_symbols - {S}:
                    raise InputError(f"{spec}: tensor {name} has a data-dependent size {e}")
                dims.append(sympy.expand(e))
            else:
                dims.append(sympy.Integer(int(d)))
        out[name] = TValue(shape=tuple(dims), param=param, is_int=is_int)
    return out


def _fitted(convs: list[_Converter], spec: str) -> dict[str, TValue]:
    """Shapes from static traces at :data:`_FIT_LENGTHS`: each dim fitted as a S + b."""
    s0, s1, s2 = _FIT_LENGTHS
    base = convs[0]
    for c in convs[1:]:
        if [n[:3] for n in c.nodes] != [n[:3] for n in base.nodes]:
            raise InputError(f"{spec}: the traced graph changes with the sequence length; "
                             f"cannot derive shapes as functions of it")
    out = {}
    for name, (_, is_int, param) in base.values.items():
        shapes = [c.values[name][0] for c in convs]
        if len({len(x) for x in shapes}) != 1:
            raise InputError(f"{spec}: rank of tensor {name} changes with the sequence length")
        dims = []
        for d0, d1, d2 in zip(*shapes, strict=True):
            a, rem = divmod(int(d1) - int(d0), s1 - s0)
            b = int(d0) - a * s0
            if rem or a * s2 + b != int(d2):
                raise InputError(f"{spec}: size of tensor {name} is not linear in the "
                                 f"sequence length ({d0}, {d1}, {d2} at {s0}, {s1}, {s2})")
            dims.append(sympy.expand(a * S + b))
        out[name] = TValue(shape=tuple(dims), param=param, is_int=is_int)
    return out


def trace_module(spec: str) -> TracedModel:
    """Import, build on meta and trace the module of ``spec`` (see the module docstring)."""
    model, display = load_module_spec(spec)
    params_total = sum(p.numel() for p in model.parameters())
    ep = _export(model, _TRACE_LEN, True, spec)
    conv = _Converter(ep, model, spec)
    conv.run()
    if not conv.token_input:
        raise InputError(f"{spec}: forward takes no tensor input")
    seq = conv.values[conv.token_input][0]
    import torch
    if len(seq) != 2:
        raise InputError(f"{spec}: forward's first input must be token ids [batch, sequence], "
                         f"not rank {len(seq)}")
    sym = seq[1].node.expr if isinstance(seq[1], torch.SymInt) else None
    bounds = ep.range_constraints.get(sym) if sym is not None else None
    if bounds is not None and bounds.lower != bounds.upper:
        values = _symbolic(conv, spec)
    else:                                    # the exporter fixed S: fit three static traces
        convs = []
        for length in _FIT_LENGTHS:
            c = _Converter(_export(model, length, False, spec), model, spec)
            c.run()
            convs.append(c)
        conv = convs[0]
        values = _fitted(convs, spec)
    nodes = tuple(TNode(name=n, source_op=src, op=op, inputs=ins, outputs=outs, scope=scope,
                        attrs=attrs) for n, src, op, ins, outs, scope, attrs in conv.nodes)
    return TracedModel(name=display, source=spec, kind="torch", nodes=nodes, values=values,
                       token_input=conv.token_input, outputs=conv.outputs, where=spec,
                       params_total=params_total)


@lru_cache(maxsize=8)
def load_torch_workload(spec: str) -> ImportedWorkload:
    """The :class:`ImportedWorkload` of a module spec (traced once per process)."""
    tm = trace_module(spec)
    rec = recognise(tm)
    return ImportedWorkload(name=tm.name, source=spec, model_type="torch", recognised=rec,
                            notes=rec.notes)
