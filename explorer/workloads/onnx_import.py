"""ONNX file -> TracedModel: canonical ops and shapes propagated as polynomials in S.

The file is parsed with the ``onnx`` package without its external data (initializer
dims are in the protobuf, so weights stored beside it are never read). The token input
(``input_ids``: the first integer input) must have a symbolic sequence axis; its batch
axis is taken as 1. Shapes are propagated here, not by ``onnx.shape_inference`` (which
loses symbolic sizes through ``Range`` and computed ``Reshape`` targets): every
supported op has a shape rule over sympy sizes, and small integer tensors (the shape
arithmetic of exporters: ``Shape -> Gather -> Concat -> Reshape``) are evaluated as
arrays of sympy expressions.
"""

from __future__ import annotations

from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from ..errors import InputError
from .generic import S, TNode, TracedModel, TValue
from .imported import ImportedWorkload
from .onnx_shapes import HANDLERS, INT_TYPES, MAX_VALUE_ELEMS, V, int_value
from .patterns import recognise

__all__ = ["read_onnx", "load_onnx_workload"]

class _Importer:
    """Walks the graph once: shapes, values and the canonical node list."""

    def __init__(self, model: Any, path: Path) -> None:
        from onnx import numpy_helper
        self.np_helper = numpy_helper
        self.model, self.path = model, path
        self.where = path.name
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          18)
        self.v: dict[str, V] = {}
        self.unsupported: dict[str, Any] = {}       # value -> node of an op without shape rule
        self.nodes: list[TNode] = []
        self.token = ""

    # -- helpers --------------------------------------------------------------------------
    def fail(self, node: Any, what: str = "unsupported op") -> InputError:
        return InputError(f"{what} {node.op_type!r} (node {node.name or node.output[0]}) "
                          f"in {self.where}")

    def get(self, name: str, node: Any) -> V:
        if name in self.unsupported:
            raise self.fail(self.unsupported[name])
        v = self.v.get(name)
        if v is None or v.shape is None:
            raise InputError(f"unknown shape of tensor {name!r} (node {node.name}) in "
                             f"{self.where}")
        return v

    def val(self, name: str, node: Any, what: str) -> np.ndarray:
        v = self.get(name, node)
        if v.value is None:
            raise InputError(f"{what} of node {node.name} ({node.op_type}) in {self.where} "
                             f"is computed from data; only shape arithmetic is supported")
        return v.value

    def ints(self, name: str, node: Any, what: str) -> list[Any]:
        return [x for x in self.val(name, node, what).reshape(-1)]

    def is_initializer(self, name: str) -> bool:
        return name in self.initializers

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        from onnx import helper
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    # -- graph ----------------------------------------------------------------------------
    def run(self) -> TracedModel:
        g = self.model.graph
        self.initializers = {i.name for i in g.initializer}
        for init in g.initializer:
            shape = tuple(sympy.Integer(d) for d in init.dims)
            is_int = init.data_type in INT_TYPES
            value = None
            if is_int and not init.external_data and prod(init.dims) <= MAX_VALUE_ELEMS:
                value = int_value(shape, self.np_helper.to_array(init), True)
            self.v[init.name] = V(shape, value, is_int, None if is_int else init.name)
        self.inputs(g)
        for node in g.node:
            self.node(node)
        outputs = tuple(o.name for o in g.output)
        values = {name: TValue(shape=v.shape, param=v.param, is_int=v.is_int)
                  for name, v in self.v.items() if v.shape is not None}
        return TracedModel(name=self.path.stem if self.path.stem != "model"
                           else self.path.resolve().parent.name or "model",
                           source=str(self.path), kind="onnx", nodes=tuple(self.nodes),
                           values=values, token_input=self.token, outputs=outputs,
                           where=self.where, aux_inputs=self.aux)

    def inputs(self, g: Any) -> None:
        inits = {i.name for i in g.initializer}
        real = [i for i in g.input if i.name not in inits]
        for i in real:
            if any(k in i.name.lower() for k in ("past_key", "past_value", "present")):
                raise InputError(f"{self.where} has KV-cache input {i.name!r}; export the "
                                 f"model without past key/values (use_cache=False)")
        ints = [i for i in real if i.type.tensor_type.elem_type in INT_TYPES]
        token = next((i for i in ints if "input_ids" in i.name), ints[0] if ints else None)
        if token is None:
            raise InputError(f"{self.where} has no integer token input (input_ids)")
        dims = token.type.tensor_type.shape.dim
        if len(dims) != 2:
            raise InputError(f"token input {token.name!r} of {self.where} must be "
                             f"[batch, sequence], not rank {len(dims)}")
        if not dims[1].dim_param:
            raise InputError(f"{self.where} has a static sequence length "
                             f"({dims[1].dim_value}) on input {token.name!r}; export with a "
                             f"dynamic sequence axis")
        if not dims[0].dim_param and dims[0].dim_value != 1:
            raise InputError(f"{self.where}: batch axis of {token.name!r} must be symbolic "
                             f"or 1, not {dims[0].dim_value}")
        names = {dims[1].dim_param: S}
        if dims[0].dim_param:
            names[dims[0].dim_param] = sympy.Integer(1)
        self.token = token.name
        self.aux = tuple(i.name for i in real if i.name != token.name)
        for i in real:
            shape = []
            for d in i.type.tensor_type.shape.dim:
                if d.dim_param:     # other symbolic axes of exports without cache = the sequence
                    shape.append(names.get(d.dim_param, S))
                else:
                    shape.append(sympy.Integer(d.dim_value))
            self.v[i.name] = V(tuple(shape), None, i.type.tensor_type.elem_type in INT_TYPES)

    def emit(self, node: Any, op: str, inputs: list[str | None], outs: list[V],
             attrs: dict[str, Any] | None = None) -> None:
        for name, v in zip(node.output, outs, strict=False):
            if v.value is not None and not isinstance(v.value, np.ndarray):
                scalar = np.empty((), dtype=object)
                scalar[()] = v.value
                v.value = scalar
            if name:
                self.v[name] = v
        scope = _scope(node)
        self.nodes.append(TNode(name=node.name or node.output[0], source_op=node.op_type,
                                op=op, inputs=tuple(inputs),
                                outputs=tuple(o for o in node.output if o), scope=scope,
                                attrs=attrs or {}))

    def node(self, node: Any) -> None:
        handler = HANDLERS.get(node.op_type)
        if handler is None or node.domain not in ("", "ai.onnx", "com.microsoft"):
            for o in node.output:
                self.unsupported[o] = node
            self.nodes.append(TNode(name=node.name or node.output[0], source_op=node.op_type,
                                    op="unsupported", inputs=tuple(i for i in node.input if i),
                                    outputs=tuple(o for o in node.output if o),
                                    scope=_scope(node)))
            return
        handler(self, node)


def _scope(node: Any) -> str:
    """Module path of a node: the exporter's namespace metadata, else its /a/b/Op name."""
    for p in node.metadata_props:
        if p.key == "namespace":
            parts = [x.split(":")[0].strip() for x in p.value.split("/")[:-1]]
            parts = [x for x in parts if x]
            return parts[-1] if parts else ""
    name = node.name or ""
    if name.startswith("/"):
        return ".".join(x for x in name.strip("/").split("/")[:-1])
    return ""


def read_onnx(path: str | Path) -> TracedModel:
    """Parse an ONNX file (external data untouched) into a :class:`TracedModel`."""
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"ONNX file not found: {p}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise InputError(f"malformed ONNX file {p}: {type(e).__name__}") from None
    if not model.graph.node:
        raise InputError(f"malformed ONNX file {p}: the graph has no nodes")
    if model.functions:
        from onnx import inliner
        model = inliner.inline_local_functions(model)
    return _Importer(model, p).run()


@lru_cache(maxsize=8)
def _cached(resolved: str, mtime_ns: int, size: int, shown: str) -> ImportedWorkload:
    tm = read_onnx(shown)
    rec = recognise(tm)
    return ImportedWorkload(name=tm.name, source=shown, model_type="onnx", recognised=rec,
                            notes=rec.notes)


def load_onnx_workload(path: str | Path) -> ImportedWorkload:
    """The :class:`ImportedWorkload` of an ONNX file (cached per file version)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"ONNX file not found: {p}")
    st = p.stat()
    return _cached(str(p.resolve()), st.st_mtime_ns, st.st_size, str(p))

