"""Imported workloads (ONNX files, torch modules): op templates -> per-phase OpGraphs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..errors import InputError
from .builder import BYTES_PER_ELEM, TOKEN_ID_BYTES
from .generic import OpTemplate, Recognised, poly_eval
from .graph import Op, OpGraph, causal_pairs

__all__ = ["ImportedWorkload"]


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


@dataclass(frozen=True)
class ImportedWorkload:
    """A model traced from an ONNX file or a torch ``nn.Module`` (no weights loaded).

    Offers the :class:`~explorer.workloads.Workload` interface the graph builder, the PPA
    model and the CLI use (``name``, ``source``, ``model_type``, ``params``, ``phases``,
    ``notes``, ``param_breakdown``); :func:`~explorer.workloads.build_graph` dispatches to
    :meth:`graph`.

    Phases: a model whose attention is causal (or that has none) runs ``prefill`` and
    ``decode``; decode is derived from the traced prefill graph (one new token per
    sequence; attention over ``kv_len`` cached keys; docs/workloads.md). A model with
    bidirectional attention has ``prefill`` only.
    """

    name: str
    source: str
    model_type: str
    recognised: Recognised
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ImportedWorkload.name must be a non-empty str, not {self.name!r}")
        if self.model_type not in ("onnx", "torch"):
            raise ValueError(f"ImportedWorkload.model_type must be 'onnx' or 'torch', "
                             f"not {self.model_type!r}")
        if not isinstance(self.recognised, Recognised):
            raise TypeError(f"ImportedWorkload.recognised must be a Recognised, "
                            f"not {type(self.recognised).__name__}")

    is_vlm = False
    vision = None

    @property
    def params(self) -> int:
        return self.recognised.params

    @property
    def phases(self) -> tuple[str, ...]:
        return ("prefill", "decode") if self.recognised.causal else ("prefill",)

    @property
    def info(self) -> dict[str, Any]:
        """Shape figures found in the graph (hidden_size, num_heads, n_layers, ...)."""
        return dict(self.recognised.info)

    def param_breakdown(self) -> dict[str, int]:
        """Parameters per block (``unused``: module parameters the forward never reads)."""
        out: dict[str, int] = {}
        for t in self.recognised.templates:
            out[t.block] = out.get(t.block, 0) + t.params
        unused = self.params - sum(out.values())
        if unused:
            out["unused"] = unused
        return out

    # -- graphs ---------------------------------------------------------------------------
    def graph(self, phase: str, *, seq_len: int = 2048, batch: int = 1, kv_len: int = 2048,
              images: int = 1, dtype: str = "fp16") -> OpGraph:
        """The operator DAG of one execution of ``phase`` (same conventions as built-ins).

        ``prefill`` evaluates every size at S = ``seq_len``; ``decode`` at S = 1 for the
        token-wise ops, while attention keeps its query rows at S = 1 and its keys at
        S = ``kv_len`` (K/V of the new token written, then read with the cached ones).
        ``images`` is accepted for interface compatibility and unused.
        """
        if phase not in self.phases:
            raise InputError(f"phase must be one of {', '.join(self.phases)} for {self.name}, "
                             f"not {phase!r}")
        if dtype not in BYTES_PER_ELEM:
            raise ValueError(f"dtype must be one of {', '.join(BYTES_PER_ELEM)}, not {dtype!r}")
        b = _positive("batch", batch)
        s = _positive("seq_len", seq_len) if phase == "prefill" else 1
        keys_at = s if phase == "prefill" else _positive("kv_len", kv_len)
        bpe = BYTES_PER_ELEM[dtype]
        g = nx.DiGraph()
        out_bytes: dict[str, int] = {}
        for t in self.recognised.templates:
            edges = [(src, b * t.k * bpe if t.last_row_only and phase == "prefill"
                      else out_bytes[src]) for src in t.inputs]
            fields = self._fields(t, phase, b, s, keys_at, bpe)
            in_bytes = sum(nb for _, nb in edges) + fields.pop("_input_bytes", 0)
            op = Op(name=t.name, kind=t.kind, block=t.block, layer=t.layer, dtype=dtype,
                    act_in_bytes=in_bytes, **fields)
            g.add_node(op.name, op=op)
            for src, nb in edges:
                g.add_edge(src, op.name, bytes=int(nb))
            out_bytes[t.name] = op.act_out_bytes
        return OpGraph(workload=self.name, phase=phase, graph=g,
                       meta=self._meta(phase, b, s, keys_at, dtype))

    def _fields(self, t: OpTemplate, phase: str, b: int, s: int, keys_at: int,
                bpe: int) -> dict[str, Any]:
        cached = self.recognised.causal and self.recognised.has_attention
        if t.kind in ("attn_qk", "softmax", "attn_av"):
            m = poly_eval(t.q_rows, s)
            keys = poly_eval(t.keys, keys_at)
            causal = t.causal and phase == "prefill"
            pairs = causal_pairs(m, keys) if causal else m * keys
            batch = b * t.heads
            kv_read = b * keys * t.kv_elems_per_token * bpe if phase == "decode" else 0
            kv_write = b * m * t.kv_elems_per_token * bpe if cached else 0
            if t.kind == "softmax":
                elems = batch * pairs
                return dict(elems=elems, n=keys, flops=float(t.flops_per_elem * elems),
                            act_out_bytes=elems * bpe)
            if t.kind == "attn_qk":
                return dict(batch=batch, m=m, k=t.k, n=keys, causal=causal,
                            flops=float(2 * batch * t.k * pairs), act_out_bytes=batch * pairs * bpe,
                            kv_read_bytes=kv_read, kv_write_bytes=kv_write)
            return dict(batch=batch, m=m, k=keys, n=t.n, causal=causal,
                        flops=float(2 * batch * t.n * pairs), act_out_bytes=batch * m * t.n * bpe,
                        kv_read_bytes=kv_read, kv_write_bytes=kv_write)
        rows = poly_eval(t.rows, s)
        extra = {"_input_bytes": b * rows * TOKEN_ID_BYTES} if t.from_input else {}
        if t.kind == "matmul":
            m = 1 if t.last_row_only and phase == "prefill" else rows
            flops = 2 * b * m * t.k * t.n + (b * m * t.n if t.bias else 0)
            return dict(batch=b, m=m, k=t.k, n=t.n, flops=float(flops), params=t.params,
                        weight_bytes=t.params * bpe, weight_read_bytes=t.read_params * bpe,
                        act_out_bytes=b * m * t.n * bpe, **extra)
        if t.kind == "embed":
            return dict(batch=b, m=rows, k=t.k, n=t.n, params=t.params,
                        weight_bytes=t.params * bpe, weight_read_bytes=b * rows * t.n * bpe,
                        act_out_bytes=b * rows * t.n * bpe, **extra)
        elems = b * rows * t.n
        return dict(elems=elems, n=t.n, flops=float(t.flops_per_elem * elems), params=t.params,
                    weight_bytes=t.params * bpe, weight_read_bytes=t.read_params * bpe,
                    act_out_bytes=elems * bpe, **extra)

    def _meta(self, phase: str, b: int, s: int, keys_at: int, dtype: str) -> dict[str, Any]:
        info = self.recognised.info
        bpe = BYTES_PER_ELEM[dtype]
        meta: dict[str, Any] = {
            "workload": self.name, "source": self.source, "model_type": self.model_type,
            "phase": phase, "dtype": dtype, "bytes_per_elem": bpe, "batch": b,
            "params": self.params, "notes": list(self.notes), "images": 0,
            "n_layers": info["n_layers"], "n_decoder_layers": info["n_layers"],
            "hidden_size": info["hidden_size"], "num_heads": info["num_heads"],
            "num_kv_heads": info["num_kv_heads"], "head_dim": info["head_dim"],
            "intermediate_size": info["intermediate_size"], "vocab_size": info["vocab_size"],
            "kv_bytes_per_token": (info["kv_elems_per_token"] * bpe
                                   if self.recognised.causal else 0),
            "tie_word_embeddings": info["tie_word_embeddings"], "sliding_window": None,
            "lm_head_rows": b if not info["lm_head_rows_all"] else None,
        }
        if phase == "prefill":
            meta.update(tokens=b * s, seq_len=s, kv_len=s if self.recognised.causal else 0,
                        attention=("causal: S(S+1)/2 score entries per head"
                                   if self.recognised.causal else "bidirectional"))
        else:
            meta.update(tokens=b, seq_len=1, kv_len=keys_at,
                        attention="one query over kv_len cached keys (new token included)")
        return meta

    def summary(self, *, kv_len: int = 2048, seq_len: int = 2048,
                dtype: str = "fp16") -> dict[str, Any]:
        """Headline figures, with the keys of :func:`explorer.workloads.workload_summary`."""
        prefill = self.graph("prefill", seq_len=seq_len, dtype=dtype)
        decode = self.graph("decode", kv_len=kv_len, dtype=dtype) if "decode" in self.phases \
            else None
        info = self.recognised.info
        main = decode if decode is not None else prefill
        return {
            "name": self.name, "source": self.source, "model_type": self.model_type,
            "dtype": dtype, "params": self.params, "params_by_block": self.param_breakdown(),
            "n_layers": info["n_layers"], "hidden_size": info["hidden_size"],
            "num_heads": info["num_heads"], "num_kv_heads": info["num_kv_heads"],
            "head_dim": info["head_dim"], "intermediate_size": info["intermediate_size"],
            "vocab_size": info["vocab_size"],
            "tie_word_embeddings": info["tie_word_embeddings"],
            "weight_bytes": int(prefill.total("weight_bytes")),
            "kv_bytes_per_token": prefill.meta["kv_bytes_per_token"],
            "kv_len": kv_len, "seq_len": seq_len,
            "flops_per_token_decode": decode.flops if decode is not None else None,
            "flops_decode": decode.flops if decode is not None else None,
            "flops_prefill": prefill.flops,
            "flops_per_token_prefill": prefill.flops / prefill.meta["tokens"],
            "decode_weight_read_bytes": int(main.total("weight_read_bytes")) if decode else None,
            "decode_kv_read_bytes": int(main.total("kv_read_bytes")) if decode else None,
            "ops": len(main), "ops_prefill": len(prefill), "op_kinds": main.kind_counts(),
            "notes": list(self.notes),
        }
