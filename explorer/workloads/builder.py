"""Build the operator DAG of one phase: prefill, decode (text decoder) or encode (vision)."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from ..errors import InputError
from .graph import Op, OpGraph, causal_pairs
from .model import DecoderConfig, VisionConfig, VlmConfig, Workload

__all__ = ["build_graph", "BYTES_PER_ELEM", "FLOPS_PER_ELEM", "TOKEN_ID_BYTES"]

#: Storage of one weight, activation or KV-cache element per dtype ("int8": weights,
#: activations and KV cache all 8-bit; quantisation scales are not counted).
BYTES_PER_ELEM = {"fp16": 2, "int8": 1}
#: A token id entering the embedding lookup (int32).
TOKEN_ID_BYTES = 4

#: FLOPs per output element of the element-wise kinds (docs/workloads.md explains each).
FLOPS_PER_ELEM = {
    "rmsnorm": 4,      # square, accumulate, * rsqrt(mean), * weight (per-row rsqrt not counted)
    "layernorm": 7,    # accumulate (mean), subtract, square, accumulate (var), * rstd, * g, + b
    "softmax": 6,      # * 1/sqrt(d), max, subtract, exp, accumulate, * 1/sum
    "rope": 3,         # x * cos + rotate_half(x) * sin
    "silu_mul": 5,     # sigmoid as exp, +1, divide; * a; * b
    "gelu": 9,         # tanh form: x*x*x (2), * 0.044715, + x, * sqrt(2/pi), tanh, + 1, * x, * 0.5
    "add": 1,
    "embed": 0,
    "reshape": 0,
}

_Src = tuple[str, int]          # (producer op name, activation bytes on the edge)


class _Builder:
    """Accumulates ops and edges of one graph (a private helper of :func:`build_graph`)."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.bpe = BYTES_PER_ELEM[dtype]
        self.g = nx.DiGraph()

    def add(self, src: Sequence[_Src], **fields) -> str:
        """Add an op; ``act_in_bytes`` defaults to the bytes of its incoming edges."""
        fields.setdefault("act_in_bytes", sum(nbytes for _, nbytes in src))
        op = Op(dtype=self.dtype, **fields)
        if op.name in self.g:
            raise RuntimeError(f"duplicate op name {op.name!r}")   # a builder bug, not input
        self.g.add_node(op.name, op=op)
        for name, nbytes in src:
            self.g.add_edge(name, op.name, bytes=int(nbytes))
        return op.name

    def matmul(self, name: str, block: str, layer: int, src: Sequence[_Src], *, batch: int,
               m: int, k: int, n: int, bias: bool, owns_weight: bool = True,
               act_in_bytes: int | None = None) -> _Src:
        """[batch, m, k] x [k, n] (+ bias, fused: one add per output element)."""
        weight_params = k * n + (n if bias else 0)
        out_bytes = batch * m * n * self.bpe
        extra = {} if act_in_bytes is None else {"act_in_bytes": act_in_bytes}
        name = self.add(src, name=name, kind="matmul", block=block, layer=layer, batch=batch,
                        m=m, k=k, n=n,
                        flops=float(2 * batch * m * k * n + (batch * m * n if bias else 0)),
                        params=weight_params if owns_weight else 0,
                        weight_bytes=weight_params * self.bpe if owns_weight else 0,
                        weight_read_bytes=weight_params * self.bpe,
                        act_out_bytes=out_bytes, **extra)
        return name, out_bytes

    def eltwise(self, kind: str, name: str, block: str, layer: int, src: Sequence[_Src], *,
                elems: int, n: int, params: int = 0) -> _Src:
        """An element-wise op producing ``elems`` elements (rows of length ``n``)."""
        out_bytes = elems * self.bpe
        name = self.add(src, name=name, kind=kind, block=block, layer=layer, elems=elems, n=n,
                        flops=float(FLOPS_PER_ELEM[kind] * elems), params=params,
                        weight_bytes=params * self.bpe, weight_read_bytes=params * self.bpe,
                        act_out_bytes=out_bytes)
        return name, out_bytes

    def norm(self, kind: str, name: str, block: str, layer: int, src: _Src, *,
             rows: int, n: int) -> _Src:
        """RMSNorm (weight) or LayerNorm (weight + bias) over rows of ``n``."""
        params = n if kind == "rmsnorm" else 2 * n
        return self.eltwise(kind, name, block, layer, [src], elems=rows * n, n=n, params=params)

    def attention(self, prefix: str, block: str, layer: int, qk_src: Sequence[_Src],
                  v_src: _Src, *, seqs: int, heads: int, kv_heads: int, head_dim: int, m: int,
                  keys: int, causal: bool, kv_read_tokens: int, kv_write_tokens: int) -> _Src:
        """Scores, softmax and weighted sum for ``seqs`` sequences of ``m`` queries.

        K/V-cache traffic is split evenly: attn_qk reads/writes K, attn_av reads/writes V.
        """
        bpe = self.bpe
        batch = seqs * heads
        pairs = causal_pairs(m, keys) if causal else m * keys
        score_bytes = batch * pairs * bpe
        kv_read = seqs * kv_read_tokens * kv_heads * head_dim * bpe
        kv_write = seqs * kv_write_tokens * kv_heads * head_dim * bpe
        qk = self.add(qk_src, name=prefix + "attn_qk", kind="attn_qk", block=block, layer=layer,
                      batch=batch, m=m, k=head_dim, n=keys, causal=causal,
                      flops=float(2 * batch * head_dim * pairs), act_out_bytes=score_bytes,
                      kv_read_bytes=kv_read, kv_write_bytes=kv_write)
        sm = self.eltwise("softmax", prefix + "softmax", block, layer, [(qk, score_bytes)],
                          elems=batch * pairs, n=keys)
        out_bytes = seqs * m * heads * head_dim * bpe
        av = self.add([sm, v_src], name=prefix + "attn_av", kind="attn_av", block=block,
                      layer=layer, batch=batch, m=m, k=keys, n=head_dim, causal=causal,
                      flops=float(2 * batch * head_dim * pairs), act_out_bytes=out_bytes,
                      kv_read_bytes=kv_read, kv_write_bytes=kv_write)
        return av, out_bytes


def _decoder_layer(b: _Builder, d: DecoderConfig, i: int, resid: _Src, *, seqs: int, t: int,
                   keys: int, causal: bool, kv_read_tokens: int) -> _Src:
    """One Llama-family layer for ``seqs`` sequences of ``t`` new tokens each."""
    p, blk = f"dec.L{i}.", "decoder"
    rows, h = seqs * t, d.hidden_size
    x = b.norm("rmsnorm", p + "attn_norm", blk, i, resid, rows=rows, n=h)
    q = b.matmul(p + "q_proj", blk, i, [x], batch=seqs, m=t, k=h, n=d.q_dim, bias=d.qkv_bias)
    k = b.matmul(p + "k_proj", blk, i, [x], batch=seqs, m=t, k=h, n=d.kv_dim, bias=d.qkv_bias)
    v = b.matmul(p + "v_proj", blk, i, [x], batch=seqs, m=t, k=h, n=d.kv_dim, bias=d.qkv_bias)
    if d.qk_norm:       # Qwen3: RMSNorm over each head's vector before RoPE
        q = b.norm("rmsnorm", p + "q_norm", blk, i, q, rows=rows * d.num_heads, n=d.head_dim)
        k = b.norm("rmsnorm", p + "k_norm", blk, i, k, rows=rows * d.num_kv_heads, n=d.head_dim)
    qk = b.eltwise("rope", p + "rope", blk, i, [q, k], elems=rows * (d.q_dim + d.kv_dim),
                   n=d.head_dim)
    attn = b.attention(p, blk, i, [qk], v, seqs=seqs, heads=d.num_heads,
                       kv_heads=d.num_kv_heads, head_dim=d.head_dim, m=t, keys=keys,
                       causal=causal, kv_read_tokens=kv_read_tokens, kv_write_tokens=t)
    o = b.matmul(p + "o_proj", blk, i, [attn], batch=seqs, m=t, k=d.q_dim, n=h, bias=d.o_bias)
    r1 = b.eltwise("add", p + "attn_add", blk, i, [resid, o], elems=rows * h, n=h)
    x2 = b.norm("rmsnorm", p + "mlp_norm", blk, i, r1, rows=rows, n=h)
    inter = d.intermediate_size
    gate = b.matmul(p + "gate_proj", blk, i, [x2], batch=seqs, m=t, k=h, n=inter,
                    bias=d.mlp_bias)
    up = b.matmul(p + "up_proj", blk, i, [x2], batch=seqs, m=t, k=h, n=inter, bias=d.mlp_bias)
    act = b.eltwise("silu_mul", p + "silu_mul", blk, i, [gate, up], elems=rows * inter, n=inter)
    down = b.matmul(p + "down_proj", blk, i, [act], batch=seqs, m=t, k=inter, n=h,
                    bias=d.mlp_bias)
    return b.eltwise("add", p + "mlp_add", blk, i, [r1, down], elems=rows * h, n=h)


def _decoder_graph(b: _Builder, d: DecoderConfig, *, seqs: int, t: int, keys: int,
                   causal: bool, kv_read_tokens: int) -> None:
    """Embedding -> layers -> final norm -> lm_head on the last position of each sequence."""
    rows, h, bpe = seqs * t, d.hidden_size, b.bpe
    emb = b.add([], name="dec.embed_tokens", kind="embed", block="decoder", layer=-1,
                batch=seqs, m=t, k=d.vocab_size, n=h, params=d.embed_params,
                weight_bytes=d.embed_params * bpe, weight_read_bytes=rows * h * bpe,
                act_in_bytes=rows * TOKEN_ID_BYTES, act_out_bytes=rows * h * bpe)
    x: _Src = (emb, rows * h * bpe)
    for i in range(d.num_layers):
        x = _decoder_layer(b, d, i, x, seqs=seqs, t=t, keys=keys, causal=causal,
                           kv_read_tokens=kv_read_tokens)
    # The model's forward normalises every position; only the last one per sequence feeds
    # lm_head (serving computes logits for the next token only).
    norm, _ = b.norm("rmsnorm", "head.final_norm", "head", -1, x, rows=rows, n=h)
    b.matmul("head.lm_head", "head", -1, [(norm, seqs * h * bpe)], batch=seqs, m=1, k=h,
             n=d.vocab_size, bias=False, owns_weight=not d.tie_word_embeddings)


def _vision_graph(b: _Builder, vlm: VlmConfig, images: int) -> None:
    """SigLIP encoder + pixel shuffle + modality projection for ``images`` images."""
    v: VisionConfig = vlm.vision
    bpe, p_, dim = b.bpe, v.num_patches, v.hidden_size
    rows = images * p_
    pixels = images * v.num_channels * v.image_size ** 2 * bpe
    # The stride-p conv is a matmul of flattened patches [P, C*p*p] by [C*p*p, D].
    x = b.matmul("vis.patch_embed", "vision", -1, [], batch=images, m=p_, k=v.patch_dim, n=dim,
                 bias=True, act_in_bytes=pixels)
    x = b.eltwise("add", "vis.pos_embed", "vision", -1, [x], elems=rows * dim, n=dim,
                  params=p_ * dim)
    hd, heads = v.head_dim, v.num_heads
    for i in range(v.num_layers):
        p, blk = f"vis.L{i}.", "vision"
        y = b.norm("layernorm", p + "ln1", blk, i, x, rows=rows, n=dim)
        q = b.matmul(p + "q_proj", blk, i, [y], batch=images, m=p_, k=dim, n=dim, bias=True)
        k = b.matmul(p + "k_proj", blk, i, [y], batch=images, m=p_, k=dim, n=dim, bias=True)
        val = b.matmul(p + "v_proj", blk, i, [y], batch=images, m=p_, k=dim, n=dim, bias=True)
        attn = b.attention(p, blk, i, [q, k], val, seqs=images, heads=heads, kv_heads=heads,
                           head_dim=hd, m=p_, keys=p_, causal=False, kv_read_tokens=0,
                           kv_write_tokens=0)
        o = b.matmul(p + "out_proj", blk, i, [attn], batch=images, m=p_, k=dim, n=dim,
                     bias=True)
        r1 = b.eltwise("add", p + "attn_add", blk, i, [x, o], elems=rows * dim, n=dim)
        y2 = b.norm("layernorm", p + "ln2", blk, i, r1, rows=rows, n=dim)
        inter = v.intermediate_size
        f1 = b.matmul(p + "fc1", blk, i, [y2], batch=images, m=p_, k=dim, n=inter, bias=True)
        g = b.eltwise("gelu", p + "gelu", blk, i, [f1], elems=rows * inter, n=inter)
        f2 = b.matmul(p + "fc2", blk, i, [g], batch=images, m=p_, k=inter, n=dim, bias=True)
        x = b.eltwise("add", p + "mlp_add", blk, i, [r1, f2], elems=rows * dim, n=dim)
    x = b.norm("layernorm", "vis.post_layernorm", "vision", -1, x, rows=rows, n=dim)
    x = b.eltwise("reshape", "conn.pixel_shuffle", "connector", -1, [x], elems=rows * dim,
                  n=vlm.connector_in_features)
    b.matmul("conn.proj", "connector", -1, [x], batch=images, m=vlm.visual_tokens_per_image,
             k=vlm.connector_in_features, n=vlm.text.hidden_size, bias=False)


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


def build_graph(workload: Workload, phase: str, *, seq_len: int = 2048, batch: int = 1,
                kv_len: int = 2048, images: int = 1, dtype: str = "fp16") -> OpGraph:
    """The operator DAG of one execution of ``phase``.

    - ``prefill``: ``batch`` prompts of ``seq_len`` tokens, causal attention counted over
      the unmasked half (S(S+1)/2 score entries per head), lm_head on the last position of
      each prompt; the new K/V are written to the cache.
    - ``decode``: ``batch`` sequences emit one token each, attending ``kv_len`` cached
      tokens (the new token's own K/V included: written, then read with the rest).
    - ``encode`` (VLMs): vision encoder + connector for ``images`` images of
      ``vision.image_size`` (image splitting off).

    ``meta`` holds ``tokens`` (tokens produced by one execution: prefill batch*seq_len,
    decode batch, encode visual tokens), ``batch``, ``seq_len`` (tokens per sequence this
    phase runs through its transformer: prompt, 1, patches per image), ``kv_len`` (cached
    tokens per sequence at the end of the phase: seq_len, kv_len, 0), ``params`` (whole
    model), ``n_layers`` (layers of the transformer this phase runs), ``model_type`` and
    the shape figures the PPA model needs.
    """
    from .imported import ImportedWorkload  # lazy: imported.py imports this module

    if isinstance(workload, ImportedWorkload):   # ONNX / torch imports build their own graphs
        return workload.graph(phase, seq_len=seq_len, batch=batch, kv_len=kv_len,
                              images=images, dtype=dtype)
    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload, not {type(workload).__name__}")
    if phase not in workload.phases:
        if phase == "encode":
            raise InputError(f"phase 'encode' needs a vision-language model; {workload.name} "
                             f"is a {workload.model_type} text decoder")
        raise InputError(f"phase must be one of {', '.join(workload.phases)}, not {phase!r}")
    if dtype not in BYTES_PER_ELEM:
        raise ValueError(f"dtype must be one of {', '.join(BYTES_PER_ELEM)}, not {dtype!r}")
    batch = _positive("batch", batch)
    b = _Builder(dtype)
    d = workload.decoder
    meta: dict[str, object] = {
        "workload": workload.name, "source": workload.source, "model_type": workload.model_type,
        "phase": phase, "dtype": dtype, "bytes_per_elem": b.bpe, "batch": batch,
        "params": workload.params, "notes": list(workload.notes),
    }
    if phase in ("prefill", "decode"):
        if phase == "prefill":
            seq_len = _positive("seq_len", seq_len)
            context = seq_len
            _decoder_graph(b, d, seqs=batch, t=seq_len, keys=seq_len, causal=True,
                           kv_read_tokens=0)
            meta.update(tokens=batch * seq_len, seq_len=seq_len, kv_len=seq_len,
                        lm_head_rows=batch, attention="causal: S(S+1)/2 score entries per head")
        else:
            kv_len = _positive("kv_len", kv_len)
            context = kv_len
            _decoder_graph(b, d, seqs=batch, t=1, keys=kv_len, causal=False,
                           kv_read_tokens=kv_len)
            meta.update(tokens=batch, seq_len=1, kv_len=kv_len, lm_head_rows=batch,
                        attention="one query over kv_len cached keys (new token included)")
        if context > d.max_position_embeddings:
            raise ValueError(f"context of {context} tokens exceeds max_position_embeddings "
                             f"({d.max_position_embeddings}) of {workload.name}")
        meta.update(images=0, n_layers=d.num_layers, hidden_size=d.hidden_size,
                    num_heads=d.num_heads, num_kv_heads=d.num_kv_heads, head_dim=d.head_dim,
                    intermediate_size=d.intermediate_size, vocab_size=d.vocab_size,
                    kv_bytes_per_token=d.kv_elems_per_token * b.bpe,
                    tie_word_embeddings=d.tie_word_embeddings, sliding_window=d.sliding_window)
    else:
        assert isinstance(workload.model, VlmConfig)
        vlm = workload.model
        images = _positive("images", images)
        _vision_graph(b, vlm, images)
        v = vlm.vision
        meta.update(tokens=images * vlm.visual_tokens_per_image, seq_len=v.num_patches,
                    kv_len=0, images=images, n_layers=v.num_layers, hidden_size=v.hidden_size,
                    num_heads=v.num_heads, num_kv_heads=v.num_heads, head_dim=v.head_dim,
                    intermediate_size=v.intermediate_size, image_size=v.image_size,
                    patch_size=v.patch_size, scale_factor=vlm.scale_factor,
                    visual_tokens_per_image=vlm.visual_tokens_per_image,
                    kv_bytes_per_token=0, attention="bidirectional over all patches")
    meta["n_decoder_layers"] = d.num_layers
    if workload.vision is not None:
        meta["n_vision_layers"] = workload.vision.num_layers
    return OpGraph(workload=workload.name, phase=phase, graph=b.g, meta=meta)
