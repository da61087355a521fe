"""Op templates of a recognised model: attention cores, polynomial sizes, names, weight owners."""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING, Any

import sympy

from ..errors import InputError
from .builder import FLOPS_PER_ELEM
from .generic import (
    MOVEMENT_OPS,
    OpTemplate,
    Recognised,
    TNode,
    const_size,
    poly,
    poly_eval,
)

if TYPE_CHECKING:
    from .patterns import _Recogniser, _Unit

__all__ = ["build_templates"]

#: S at which candidate outputs of an element-wise group are compared by size.
_PROBE_S = 1 << 20
#: Template kind of each element-wise pattern (generic.py documents the patterns).
_KIND = {"rmsnorm": "rmsnorm", "layernorm": "layernorm", "softmax": "softmax", "gelu": "gelu",
         "silu": "silu_mul", "silu_mul": "silu_mul", "rope": "rope", "arith": "add",
         "add": "add", "reshape": "reshape"}


def _prod(shape) -> sympy.Expr:
    return sympy.expand(prod(shape, start=sympy.Integer(1)))


class _Templates:
    """Builds the templates of one :class:`_Recogniser` (pass 3 and 4 of recognition)."""

    def __init__(self, r: _Recogniser) -> None:
        self.r, self.w, self.tm = r, r.w, r.tm
        self.names: dict[int, str] = {}             # id(unit) -> template name
        self.used: set[str] = set()
        self.owned: set[str] = set()                # parameter keys already owned
        self.name_of_value: dict[str, str] = {}
        self.out_root: dict[str, str] = {}          # matmul template -> output value
        self.cores: dict[int, dict[str, Any]] = {}  # id(unit) -> its attention core
        self.templates: list[OpTemplate] = []
        self.notes: list[str] = []

    def fail(self, node: TNode, what: str) -> InputError:
        return self.w.fail(node, what)

    # -- attention cores ------------------------------------------------------------------
    def pair_attention(self) -> None:
        r, w = self.r, self.w
        qk_units: dict[int, _Unit] = {}
        for u in r.units:
            if u.kind != "attn_mm":
                continue
            pu = r.unit_of.get(w.root(u.nodes[0].inputs[0]))
            if pu is not None and pu.kind == "region" and pu.cls == "softmax":
                qk = r.unit_of.get(pu.source)
                if qk is None or qk.kind != "attn_mm" or id(qk) in self.cores:
                    raise self.fail(u.nodes[0], "unsupported attention pattern at")
                core = {"qk": qk, "softmax": pu, "av": u}
                for part in core.values():
                    self.cores[id(part)] = core
            else:
                qk_units[id(u)] = u
        for u in qk_units.values():
            if id(u) not in self.cores:
                raise self.fail(u.nodes[0], "unsupported activation x activation matmul")
        for u in r.units:
            if u.kind == "sdpa":
                self.cores[id(u)] = {"sdpa": u}

    def core_sizes(self, core: dict[str, Any]) -> dict[str, Any]:
        w, r = self.w, self.r
        if "sdpa" in core:
            node = core["sdpa"].nodes[0]
            q, k, v = node.inputs[:3]
            mask = node.inputs[3] if len(node.inputs) > 3 else None
            qs, ks, vs = w.shape(q), w.shape(k), w.shape(v)
            d, keys_e, heads_e = qs[-1], ks[-2], qs[:-2]
            causal = bool(node.attrs.get("is_causal")) or (
                mask is not None and r.causal_mask([mask]))
            scope_node = node
        else:
            qk, av = core["qk"].nodes[0], core["av"].nodes[0]
            q, kt = qk.inputs[:2]
            v = av.inputs[1]
            k = kt
            qs, kts, vs = w.shape(q), w.shape(kt), w.shape(v)
            d, keys_e, heads_e = qs[-1], kts[-1], w.shape(qk.outputs[0])[:-2]
            if sympy.expand(vs[-2] - keys_e) != 0:
                raise self.fail(av, "unsupported attention shapes at")
            causal = r.causal_mask(r.constant_operands(core["softmax"]))
            scope_node = qk
        what = f"attention at node {scope_node.name} in {self.tm.where}"
        m, keys = poly(qs[-2], what), poly(keys_e, what)
        sizes = {"heads": const_size(_prod(heads_e), what), "m": m, "keys": keys,
                 "d": const_size(d, what), "dv": const_size(vs[-1], what), "causal": causal,
                 "kv_k": self.per_token(k, keys_e, what), "kv_v": self.per_token(v, keys_e, what),
                 "q": q, "k": k, "v": v, "node": scope_node}
        return sizes

    def per_token(self, v: str, keys_e: sympy.Expr, what: str) -> int:
        """Elements of the cached K or V tensor per key token.

        The smallest per-token size along the views from the attention operand back to
        its producer: past GQA expansions (expand/repeat grow it) and down to the K or V
        slice of a fused QKV projection (split/slice shrink it).
        """
        w, sizes = self.w, []
        while True:
            per = sympy.cancel(w.values[v].numel / keys_e)
            if per.is_Integer:
                sizes.append(int(per))
            node = w.producer.get(v)
            if node is None or node.op not in MOVEMENT_OPS or len(w.live_inputs(node)) != 1:
                break
            v = w.live_inputs(node)[0]
        if not sizes:
            raise InputError(f"K/V cache of {what}: tensor {v!r} is not a whole number of "
                             f"elements per key token")
        return min(sizes)

    # -- names ----------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}.{i}", i + 1
        self.used.add(name)
        return name

    def base(self, node: TNode) -> str:
        return node.scope or node.name

    # -- templates ------------------------------------------------------------------------
    def owner_params(self, values: list[str]) -> tuple[int, int]:
        """(parameters owned, parameters read) of weight values, first user owns."""
        owned = read = 0
        for v in values:
            tv = self.w.values[v]
            n = const_size(tv.numel, f"parameter {v!r} in {self.tm.where}")
            read += n
            if tv.param not in self.owned:
                self.owned.add(tv.param)
                owned += n
        return owned, read

    def inputs_of(self, name: str, values: list[str]) -> tuple[tuple[str, ...], bool]:
        out: list[str] = []
        from_input = False
        for v in values:
            rt = self.w.root(v)
            if rt == self.tm.token_input:
                from_input = True
                continue
            producer = self.name_of_value.get(rt)
            if producer is None:
                node = self.w.producer.get(rt)
                raise InputError(f"no op produces tensor {rt!r}"
                                 f"{f' (node {node.name})' if node else ''} in {self.tm.where}")
            if producer != name and producer not in out:
                out.append(producer)
        return tuple(out), from_input

    def group_output(self, unit: _Unit) -> str | None:
        """The value an element-wise group hands on (the largest one read outside it)."""
        inside = {id(n) for n in unit.nodes}
        outs = set(self.tm.outputs)
        best, best_size = None, -1
        for n in unit.nodes:
            for v in n.outputs:
                users = self.w.consumers.get(v, [])
                if v in outs or any(id(u) not in inside for u in users):
                    size = poly_eval(poly(self.w.values[v].numel, v), _PROBE_S)
                    if size > best_size:
                        best, best_size = v, size
        return best

    def name_units(self) -> None:
        for u in self.r.units:
            if u.absorbed_into is not None:
                continue
            node = u.nodes[-1] if u.kind in ("region", "multi") else u.nodes[0]
            core = self.cores.get(id(u))
            if core is not None and "sdpa" in core:
                scope = self.base(node)
                core["names"] = tuple(self.unique(f"{scope}.{part}")
                                      for part in ("attn_qk", "softmax", "attn_av"))
                self.names[id(u)] = core["names"][2]
            elif core is not None:
                part = ("attn_qk" if u is core["qk"] else "softmax" if u is core["softmax"]
                        else "attn_av")
                scope = self.base(core["qk"].nodes[0])
                self.names[id(u)] = self.unique(f"{scope}.{part}")
            elif u.kind in ("region", "multi"):
                self.names[id(u)] = self.unique(f"{self.base(node)}.{_KIND[u.cls]}")
            else:
                self.names[id(u)] = self.unique(self.base(node))
        for u in self.r.units:
            target = u.absorbed_into or u
            name = self.names[id(target)]
            for n in u.nodes:
                for o in n.outputs:
                    self.name_of_value[o] = name

    def run(self) -> Recognised:
        self.pair_attention()
        self.name_units()
        sizes_of: dict[int, dict[str, Any]] = {}
        for u in self.r.units:
            if u.absorbed_into is not None:
                continue
            core = self.cores.get(id(u))
            if core is not None:
                key = id(core["sdpa"] if "sdpa" in core else core["qk"])
                if key not in sizes_of:
                    sizes_of[key] = self.core_sizes(core)
                self.attention_templates(u, core, sizes_of[key])
            elif u.kind == "matmul":
                self.matmul_template(u)
            elif u.kind == "embed":
                self.embed_template(u)
            else:
                self.eltwise_template(u)
        return self.finish(list(sizes_of.values()))

    def layer(self, node: TNode) -> int:
        from .patterns import layer_of
        return layer_of(node.scope or node.name)

    def matmul_template(self, u: _Unit) -> None:
        node, w = u.nodes[0], self.w
        name = self.names[id(u)]
        what = f"matmul at node {node.name} in {self.tm.where}"
        x, out = node.inputs[0], node.outputs[0]
        k, n = const_size(w.shape(x)[-1], what), const_size(w.shape(out)[-1], what)
        weights = [u.weight] + ([u.bias] if u.bias else [])
        wn = const_size(w.values[u.weight].numel, what)
        if wn != k * n:
            raise self.fail(node, f"unsupported weight of {wn} elements for a {k}x{n} matmul")
        if u.bias and const_size(w.values[u.bias].numel, what) != n:
            raise self.fail(node, "unsupported bias size of")
        owned, read = self.owner_params(weights)
        inputs, from_input = self.inputs_of(name, [x])
        self.out_root[name] = w.root(u.nodes[-1].outputs[0])
        self.templates.append(OpTemplate(
            name=name, kind="matmul", block="decoder", layer=self.layer(node), inputs=inputs,
            rows=poly(sympy.cancel(w.values[out].numel / n), what), k=k, n=n,
            bias=u.bias is not None, params=owned, read_params=read, from_input=from_input))

    def embed_template(self, u: _Unit) -> None:
        node, w = u.nodes[0], self.w
        what = f"embedding at node {node.name} in {self.tm.where}"
        shape = w.values[u.weight].shape or ()
        if len(shape) != 2:
            raise self.fail(node, "unsupported embedding table (not 2-D) in")
        owned, read = self.owner_params([u.weight])
        name = self.names[id(u)]
        inputs, from_input = self.inputs_of(name, [node.inputs[1]])
        self.templates.append(OpTemplate(
            name=name, kind="embed", block="decoder", layer=self.layer(node), inputs=inputs,
            rows=poly(w.values[node.inputs[1]].numel, what), k=const_size(shape[0], what),
            n=const_size(shape[1], what), params=owned, read_params=read,
            from_input=from_input))

    def eltwise_template(self, u: _Unit) -> None:
        w = self.w
        name = self.names[id(u)]
        nodes = list(u.nodes)
        for other in self.r.units:          # a SwiGLU product also runs the silu it absorbed
            if other.absorbed_into is u:
                nodes = other.nodes + nodes
        out = self.group_output(u)
        if out is None:                     # dead code: nothing reads it
            return
        node = u.nodes[-1]
        what = f"{u.cls} at node {node.name} in {self.tm.where}"
        shape = w.shape(out)
        n = const_size(shape[-1], what) if shape else 1
        kind = _KIND[u.cls]
        weights = [] if u.cls in ("rope", "softmax") else [
            p for p in dict.fromkeys(self.r.param_value(v) for v in self.operands(nodes)) if p]
        owned, read = self.owner_params(weights)
        live = [i for n_ in nodes for i in w.live_inputs(n_)]
        inputs, from_input = self.inputs_of(name, live)
        if u.cls == "arith":
            fpe = sum(1 for n_ in nodes if n_.op != "concat")
        else:
            fpe = FLOPS_PER_ELEM[kind]
        if u.cls == "silu":
            self.notes.append(f"{name}: SiLU without a gate product, counted as silu_mul "
                              f"({FLOPS_PER_ELEM['silu_mul']} FLOPs/element, 1 more than SiLU)")
        self.templates.append(OpTemplate(
            name=name, kind=kind, block="decoder", layer=self.layer(node), inputs=inputs,
            rows=poly(sympy.cancel(w.values[out].numel / n), what), n=n, params=owned,
            read_params=read, from_input=from_input, flops_per_elem=fpe))

    def operands(self, nodes: list[TNode]) -> list[str]:
        out = []
        for n in nodes:
            for i in n.inputs:
                v = self.w.values.get(i) if i else None
                if i in self.w.live or v is None or v.shape is None or not v.shape:
                    continue
                out.append(i)
        return out

    def attention_templates(self, u: _Unit, core: dict[str, Any], sz: dict[str, Any]) -> None:
        layer = self.layer(sz["node"])
        common = dict(block="decoder", layer=layer, heads=sz["heads"], q_rows=sz["m"],
                      keys=sz["keys"], causal=sz["causal"])
        if "sdpa" in core:
            qk_name, sm_name, av_name = core["names"]
            qk_in, _ = self.inputs_of(qk_name, [sz["q"], sz["k"]])
            v_in, _ = self.inputs_of(av_name, [sz["v"]])
            self.templates.append(OpTemplate(name=qk_name, kind="attn_qk", inputs=qk_in,
                                             k=sz["d"], kv_elems_per_token=sz["kv_k"], **common))
            self.templates.append(OpTemplate(name=sm_name, kind="softmax", inputs=(qk_name,),
                                             flops_per_elem=FLOPS_PER_ELEM["softmax"], **common))
            self.templates.append(OpTemplate(name=av_name, kind="attn_av",
                                             inputs=(sm_name,) + v_in, n=sz["dv"],
                                             kv_elems_per_token=sz["kv_v"], **common))
            return
        name = self.names[id(u)]
        if u is core["qk"]:
            qk_in, _ = self.inputs_of(name, [sz["q"], sz["k"]])
            self.templates.append(OpTemplate(name=name, kind="attn_qk", inputs=qk_in,
                                             k=sz["d"], kv_elems_per_token=sz["kv_k"], **common))
        elif u is core["softmax"]:
            self.templates.append(OpTemplate(
                name=name, kind="softmax", inputs=(self.names[id(core["qk"])],),
                flops_per_elem=FLOPS_PER_ELEM["softmax"], **common))
        else:
            v_in, _ = self.inputs_of(name, [sz["v"]])
            self.templates.append(OpTemplate(
                name=name, kind="attn_av", inputs=(self.names[id(core["softmax"])],) + v_in,
                n=sz["dv"], kv_elems_per_token=sz["kv_v"], **common))

    def finish(self, cores: list[dict[str, Any]]) -> Recognised:
        from dataclasses import replace
        causal = all(c["causal"] for c in cores)
        out_roots = {self.w.root(o) for o in self.tm.outputs}
        attn_idx = [i for i, t in enumerate(self.templates) if t.kind == "attn_av"]
        last_attn = attn_idx[-1] if attn_idx else -1
        templates = []
        for i, t in enumerate(self.templates):
            changes: dict[str, Any] = {}
            if t.layer < 0 and i > last_attn >= 0:
                changes["block"] = "head"
            if (t.kind == "matmul" and cores and causal and self.out_root.get(t.name) in out_roots
                    and any(t.rows[1:])):
                changes["last_row_only"] = True
            templates.append(replace(t, **changes) if changes else t)
        params = sum(t.params for t in templates)
        notes = list(dict.fromkeys(self.notes))
        total = self.tm.params_total
        if total is not None and total != params:
            notes.append(f"{total - params:,} of the model's {total:,} parameters are not "
                         f"read by the traced forward")
        info = self.info(templates, cores)
        return Recognised(templates=tuple(templates),
                          params=total if total is not None else params, causal=causal,
                          has_attention=bool(cores), info=info, notes=tuple(notes))

    def info(self, templates: list[OpTemplate], cores: list[dict[str, Any]]) -> dict[str, Any]:
        emb = next((t for t in templates if t.kind == "embed"), None)
        layer_mm = [t.n for t in templates if t.kind == "matmul" and t.block == "decoder"
                    and t.layer >= 0]
        first = cores[0] if cores else None
        d = first["d"] if first else 0
        kv_heads = first["kv_k"] // d if first and d and first["kv_k"] % d == 0 else 0
        head = [t for t in templates if t.kind == "matmul" and t.last_row_only]
        return {
            "n_layers": len(cores),
            "hidden_size": emb.n if emb else 0,
            "vocab_size": emb.k if emb else (head[0].n if head else 0),
            "num_heads": first["heads"] if first else 0,
            "num_kv_heads": kv_heads,
            "head_dim": d,
            "intermediate_size": max(layer_mm, default=0),
            "kv_elems_per_token": sum(c["kv_k"] + c["kv_v"] for c in cores),
            "tie_word_embeddings": any(t.params < t.read_params for t in templates
                                       if t.kind == "matmul"),
            "lm_head_rows_all": not head,
        }


def build_templates(r: _Recogniser) -> Recognised:
    """Templates of a recogniser whose units are walked and classified."""
    return _Templates(r).run()

