"""Imported models: torch modules traced on the meta device and ONNX files, against
hand formulas, torch's own parameter count and the built-in config.json builder."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from explorer.cli import main
from explorer.design import Design, MemoryConfig, MeshConfig, TileConfig
from explorer.errors import InputError
from explorer.ppa.problem import Problem
from explorer.workloads import build_graph, load_workload, workload_summary
from explorer.workloads.builder import TOKEN_ID_BYTES

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

FIXTURE = Path(__file__).parent / "fixtures" / "tiny_llama.py"
#: The tiny model's defaults (tests/fixtures/tiny_llama.py): GQA 4 heads over 2 KV heads.
TINY = dict(vocab=96, hidden=64, inter=160, layers=2, heads=4, kv_heads=2)


def spec(cls: str = "TinyLlama", **kwargs) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{FIXTURE}:{cls}({args})"


def fixture_module():
    name = "_tiny_llama_fixture"
    if name not in sys.modules:
        s = importlib.util.spec_from_file_location(name, FIXTURE)
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
    return sys.modules[name]


def torch_params(cls: str = "TinyLlama", **kwargs) -> int:
    with torch.device("meta"):
        model = getattr(fixture_module(), cls)(**kwargs)
    return sum(p.numel() for p in model.parameters())


def hf_config(tie: bool = False, bias: bool = False, **kw) -> dict:
    """The config.json of the same architecture (qwen2 = Llama with q/k/v bias)."""
    c = {**TINY, **kw}
    return {"model_type": "qwen2" if bias else "llama", "hidden_act": "silu",
            "vocab_size": c["vocab"], "hidden_size": c["hidden"],
            "intermediate_size": c["inter"], "num_hidden_layers": c["layers"],
            "num_attention_heads": c["heads"], "num_key_value_heads": c["kv_heads"],
            "tie_word_embeddings": tie, "max_position_embeddings": 1 << 20}


def hand_flops(phase: str, t: int, *, vocab=96, hidden=64, inter=160, layers=2, heads=4,
               kv_heads=2, bias=False) -> int:
    """FLOPs of one sequence by hand (docs/workloads.md conventions).

    decode: t = kv_len, one new token; prefill: t = prompt length, causal pairs
    t(t+1)/2, lm_head on the last position only.
    """
    h, i, d = hidden, inter, hidden // heads
    rows, pairs = (1, t) if phase == "decode" else (t, t * (t + 1) // 2)
    layer_w = h * heads * d + 2 * h * kv_heads * d + heads * d * h + 3 * h * i
    gemm = 2 * rows * layers * layer_w + 2 * hidden * vocab
    gemm += rows * layers * (heads + 2 * kv_heads) * d if bias else 0
    attn = 2 * 2 * layers * heads * d * pairs + 6 * layers * heads * pairs
    elt = rows * (4 * h * (2 * layers + 1) + 3 * layers * (heads + kv_heads) * d
                  + 5 * layers * i + 2 * layers * h)
    return gemm + attn + elt


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """The tiny model exported by torch.onnx.export: dynamo (optimize off, tied) and the
    legacy TorchScript exporter (untied, random norm weights so none are value-equal)."""
    out = tmp_path_factory.mktemp("onnx")
    mod = fixture_module()
    torch.manual_seed(0)
    tied = mod.TinyLlama(tie=True).eval()
    ids = torch.zeros(1, 8, dtype=torch.long)
    dyn = out / "tiny_tied.onnx"
    seq = torch.export.Dim("seq", min=2, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tied, (ids,), str(dyn), dynamo=True, optimize=False,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_shapes=({1: seq},), verbose=False)
        untied = mod.TinyLlama(bias=True).eval()
        for m in untied.modules():
            if isinstance(m, mod.RMSNorm):
                torch.nn.init.normal_(m.weight)
        legacy = out / "tiny_bias.onnx"
        torch.onnx.export(untied, (ids,), str(legacy), dynamo=False,
                          input_names=["input_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})
    return {"tied": dyn, "bias": legacy}


# ---------------------------------------------------------------------------------------------
# torch modules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kw", [
    ("TinyLlama", {}),
    ("TinyLlama", {"tie": True}),
    ("TinyLlamaSdpa", {"tie": True}),
    ("TinyLlama", {"bias": True, "layers": 3}),
])
def test_torch_params_and_flops_by_hand(cls, kw):
    w = load_workload(spec(cls, **kw))
    assert w.model_type == "torch" and w.phases == ("prefill", "decode")
    assert w.params == torch_params(cls, **kw)
    dims = {**TINY, "layers": kw.get("layers", 2)}
    decode = build_graph(w, "decode", kv_len=77)
    # every parameter is owned by exactly one op (a tied lm_head owns none)
    assert decode.total("params") == w.params
    assert decode.flops == hand_flops("decode", 77, bias=kw.get("bias", False), **dims)
    prefill = build_graph(w, "prefill", seq_len=33)
    assert prefill.flops == hand_flops("prefill", 33, bias=kw.get("bias", False), **dims)
    head = decode.op("lm_head")
    assert (head.params == 0) == bool(kw.get("tie")) and head.weight_read_bytes == 96 * 64 * 2


def test_torch_decode_graph_structure():
    w = load_workload(spec())
    g = build_graph(w, "decode", kv_len=100, batch=3)
    L, heads, kv_heads, d = 2, 4, 2, 16
    assert g.kind_counts() == {"matmul": 7 * L + 1, "attn_qk": L, "attn_av": L,
                               "softmax": L, "rmsnorm": 2 * L + 1, "rope": 2 * L,
                               "silu_mul": L, "add": 2 * L, "embed": 1}
    assert nx.is_directed_acyclic_graph(g.graph)
    for op in g.ops:
        incoming = sum(data["bytes"] for _, _, data in g.graph.in_edges(op.name, data=True))
        extra = 3 * TOKEN_ID_BYTES if op.kind == "embed" else 0
        assert op.act_in_bytes == incoming + extra, op.name
    qk = g.op("layers.1.self_attn.attn_qk")
    assert (qk.batch, qk.m, qk.k, qk.n, qk.causal) == (3 * heads, 1, d, 100, False)
    # K cache of one layer: 3 sequences x 100 tokens x kv_heads x head_dim x 2 bytes
    assert qk.kv_read_bytes == 3 * 100 * kv_heads * d * 2
    assert qk.kv_write_bytes == 3 * 1 * kv_heads * d * 2
    assert g.meta["kv_bytes_per_token"] == 2 * L * kv_heads * d * 2
    assert (g.meta["num_heads"], g.meta["num_kv_heads"], g.meta["head_dim"]) == (4, 2, 16)
    assert g.meta["tokens"] == 3 and g.meta["n_layers"] == L
    p = build_graph(w, "prefill", seq_len=50, batch=3)
    qk = p.op("layers.1.self_attn.attn_qk")
    assert qk.causal and (qk.m, qk.n) == (50, 50) and qk.kv_read_bytes == 0
    assert p.op("lm_head").m == 1 and p.op("norm.rmsnorm").elems == 3 * 50 * 64
    assert [op.name for op in p.ops] == [op.name for op in g.ops]


@pytest.mark.parametrize("tie,bias", [(False, False), (True, False), (False, True)])
def test_torch_matches_config_json_builder(tmp_path, tie, bias):
    """The same architecture from a config.json: equal params, FLOPs, KV and weight bytes
    in both phases (exact: the conventions coincide; the import has two rope ops per
    layer, one on q and one on k, where the builder has one on both)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(hf_config(tie=tie, bias=bias)))
    ref = load_workload(path)
    w = load_workload(spec(tie=tie, bias=bias))
    assert w.params == ref.params
    for phase, kw in (("decode", {"kv_len": 300, "batch": 2}),
                      ("prefill", {"seq_len": 40, "batch": 2})):
        a, b = build_graph(w, phase, **kw), build_graph(ref, phase, **kw)
        for attr in ("flops", "macs", "weight_bytes", "weight_read_bytes", "kv_read_bytes",
                     "kv_write_bytes", "act_out_bytes"):
            assert a.total(attr) == b.total(attr), (phase, attr)
        kinds = a.kind_counts()
        kinds["rope"] //= 2
        assert kinds == b.kind_counts()
        assert a.meta["tokens"] == b.meta["tokens"]
        assert a.meta["kv_bytes_per_token"] == b.meta["kv_bytes_per_token"]


def test_gpt2_layout_layernorm_gelu_fused_qkv_mask_buffer():
    """LayerNorm + tanh GELU + fused QKV split + biases + a tril mask buffer (causal)."""
    w = load_workload(spec("TinyGpt2"))
    assert w.params == torch_params("TinyGpt2") and w.phases == ("prefill", "decode")
    V, H, L, nh, kv = 80, 48, 2, 4, 50
    g = build_graph(w, "decode", kv_len=kv)
    gemm = 2 * (L * (H * 3 * H + H * H + H * 4 * H + 4 * H * H) + H * V)
    bias = L * (3 * H + H + 4 * H + H)
    attn = 2 * 2 * L * H * kv + 6 * L * nh * kv
    # LayerNorm 7/elem (2 per layer + final), GELU 9/elem, 2 residual adds per layer; the
    # position-embedding add is fused into the first LayerNorm (docs: known limitation).
    elt = 7 * H * (2 * L + 1) + 9 * 4 * H * L + 2 * L * H
    assert g.flops == gemm + bias + attn + elt
    assert g.kind_counts() == {"matmul": 4 * L + 1, "attn_qk": L, "attn_av": L, "softmax": L,
                               "layernorm": 2 * L + 1, "gelu": L, "add": 2 * L, "embed": 1}
    # K and V of the fused projection: H elements each per token and layer
    assert g.meta["kv_bytes_per_token"] == 2 * L * H * 2
    assert build_graph(w, "prefill", seq_len=9).op("blocks.0.attn_qk").causal


def test_torch_fixed_length_module_falls_back_to_fitted_traces():
    fixed = load_workload(spec("TinyLlamaFixedLength"))
    ref = load_workload(spec())
    for phase in ("prefill", "decode"):
        a = build_graph(fixed, phase, seq_len=29, kv_len=61)
        b = build_graph(ref, phase, seq_len=29, kv_len=61)
        assert a.flops == b.flops and a.total("kv_read_bytes") == b.total("kv_read_bytes")


def test_torch_spec_forms(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURE.parent))
    a = load_workload('tiny_llama:TinyLlama({"layers": 1, "tie": true})')
    b = load_workload("tiny_llama:TinyLlama(layers=1, tie=True)")
    assert a.params == b.params == torch_params(layers=1, tie=True)


def test_ppa_evaluates_imported_model(tmp_path):
    """The PPA model runs on the imported graphs and agrees with the config.json twin."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(hf_config()))
    t = TileConfig(vlen=256, dmem_kib=64, imem_kib=8, wmem_kib=0)
    design = Design("t", "28nm", MeshConfig.uniform(2, 2, t),
                    MemoryConfig("off_chip", "lpddr5x", 1), clock_mhz=100.0)
    results = []
    for workload in (spec(), str(path)):
        r = Problem(workload=workload, node="28nm", seq_len=32, kv_len=64).evaluate([design])
        assert set(r.phases) == {"prefill", "decode"}
        for ph in r.phases.values():
            assert np.isfinite(ph.tokens_per_s).all() and (ph.tokens_per_s > 0).all()
        results.append(r)
    imp, ref = results
    # Same work and bytes; the import splits each layer's rope in two (one more small op).
    for name in ("prefill", "decode"):
        assert imp.phases[name].tokens_per_s[0] == pytest.approx(
            ref.phases[name].tokens_per_s[0], rel=0.05)
    assert imp.area_mm2[0] == pytest.approx(ref.area_mm2[0], rel=1e-9)


@pytest.mark.expensive
def test_llama_3_1_8b_module_equals_builtin():
    """Llama 3.1 8B dims as a torch module on meta (no weights): exact params, decode and
    prefill FLOPs and bytes of the built-in llama3.1-8b (about 15 s of torch.export)."""
    w = load_workload(spec(vocab=128256, hidden=4096, inter=14336, layers=32, heads=32,
                           kv_heads=8, rope_theta=500000.0))
    ref = load_workload("llama3.1-8b")
    assert w.params == ref.params == 8_030_261_248
    for phase in ("decode", "prefill"):
        a, b = build_graph(w, phase), build_graph(ref, phase)
        for attr in ("flops", "weight_read_bytes", "kv_read_bytes", "act_out_bytes"):
            assert a.total(attr) == b.total(attr)
    assert workload_summary(w)["flops_per_token_decode"] == 16_099_753_984


# ---------------------------------------------------------------------------------------------
# ONNX files
# ---------------------------------------------------------------------------------------------
def test_onnx_dynamo_export_params_and_flops(onnx_files):
    w = load_workload(onnx_files["tied"])
    assert w.model_type == "onnx"
    assert w.params == torch_params(tie=True) == 92_480
    assert build_graph(w, "decode", kv_len=77).flops == hand_flops("decode", 77, **TINY)
    assert build_graph(w, "prefill", seq_len=33).flops == hand_flops("prefill", 33, **TINY)
    ref = load_workload(spec(tie=True))
    a, b = build_graph(w, "decode", kv_len=500, batch=4), build_graph(ref, "decode", kv_len=500,
                                                                     batch=4)
    assert a.kind_counts() == b.kind_counts()
    for attr in ("flops", "weight_bytes", "weight_read_bytes", "kv_read_bytes", "act_out_bytes"):
        assert a.total(attr) == b.total(attr), attr


def test_onnx_legacy_export_with_bias(onnx_files):
    """TorchScript exporter: pre-transposed weights, Identity-aliased parameters, q/k/v
    biases as separate Adds (fused into their matmuls)."""
    w = load_workload(onnx_files["bias"])
    assert w.params == torch_params(bias=True)
    g = build_graph(w, "decode", kv_len=64)
    assert g.flops == hand_flops("decode", 64, bias=True, **TINY)
    assert g.kind_counts()["matmul"] == 15 and g.kind_counts()["add"] == 4


def test_onnx_external_data_is_never_read(onnx_files, tmp_path):
    model = onnx.load(str(onnx_files["tied"]))
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=0)
    (tmp_path / "ext.weights").unlink()              # the weights are gone
    w = load_workload(path)
    assert w.params == 92_480


def _tiny_onnx(path: Path, op: str, *, seq: str | int = "seq", extra_input: str = "") -> Path:
    """input_ids -> Gather(table) -> <op> -> MatMul(W): a hand-built ONNX graph."""
    from onnx import TensorProto, helper, numpy_helper
    table = numpy_helper.from_array(np.zeros((10, 4), np.float32), "table")
    weight = numpy_helper.from_array(np.zeros((4, 10), np.float32), "W")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["e"], name="embed"),
             helper.make_node(op, ["e"], ["a"], name="act"),
             helper.make_node("MatMul", ["a", "W"], ["logits"], name="head")]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", seq])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.FLOAT, [1, 2]))
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
                              [table, weight])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
                    str(path))
    return path


def test_onnx_hand_built_graph(tmp_path):
    w = load_workload(_tiny_onnx(tmp_path / "gelu.onnx", "Gelu"))
    g = build_graph(w, "prefill", seq_len=5)
    assert g.kind_counts() == {"matmul": 1, "gelu": 1, "embed": 1}
    assert w.params == 10 * 4 + 4 * 10
    assert g.flops == 9 * 5 * 4 + 2 * 5 * 4 * 10       # no attention: every row to the head


@pytest.mark.parametrize("op,message", [
    ("Relu", r"^unsupported op 'Relu' \(node act\) in relu\.onnx$"),
    ("HardSwish", r"^unsupported op 'HardSwish' \(node act\) in hardswish\.onnx$"),
])
def test_onnx_unsupported_op_is_named(tmp_path, op, message):
    path = _tiny_onnx(tmp_path / f"{op.lower()}.onnx", op)
    with pytest.raises(InputError, match=message):
        load_workload(path)


def test_unsupported_torch_op_is_named():
    with pytest.raises(InputError, match=r"^unsupported op 'aten\.relu\.default' \(node relu\) "
                                         r"in .*tiny_llama\.py:ReluMlp\(\)$"):
        load_workload(spec("ReluMlp"))


def test_onnx_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"^ONNX file not found: .*missing\.onnx$"):
        load_workload(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(InputError, match=r"^malformed ONNX file .*junk\.onnx"):
        load_workload(junk)
    with pytest.raises(InputError, match=r"static sequence length \(7\) on input 'input_ids'; "
                                         r"export with a dynamic sequence axis$"):
        load_workload(_tiny_onnx(tmp_path / "static.onnx", "Gelu", seq=7))
    with pytest.raises(InputError, match=r"KV-cache input 'past_key_values\.0\.key'"):
        load_workload(_tiny_onnx(tmp_path / "kv.onnx", "Gelu",
                                 extra_input="past_key_values.0.key"))


def test_torch_spec_errors():
    with pytest.raises(InputError, match=r"^cannot import module 'no_such_pkg_xyz'"):
        load_workload("no_such_pkg_xyz:Model")
    with pytest.raises(InputError, match=r"has no attribute 'Nope'$"):
        load_workload(f"{FIXTURE}:Nope")
    with pytest.raises(InputError, match=r"returned a int, not a torch\.nn\.Module$"):
        load_workload(f"{FIXTURE}:not_a_module")
    with pytest.raises(InputError, match=r"malformed argument list"):
        load_workload(f"{FIXTURE}:TinyLlama(layers=)")
    with pytest.raises(InputError, match=r"arguments must be literals"):
        load_workload(f"{FIXTURE}:TinyLlama(layers=os.getcwd())")
    with pytest.raises(InputError, match=r"building the module failed: TypeError: "):
        load_workload(f"{FIXTURE}:TinyLlama(bogus=1)")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def test_cli_show_onnx_and_module(capsys, onnx_files):
    assert main(["workload", "show", str(onnx_files["tied"]), "--json", "--kv-len", "77"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 92_480 and data["model_type"] == "onnx"
    assert data["flops_per_token_decode"] == hand_flops("decode", 77, **TINY)
    assert main(["workload", "show", spec(), "--phase", "prefill", "--seq-len", "33"]) == 0
    out = capsys.readouterr().out
    assert f"{torch_params():,}" in out and "rope ops" in out


@pytest.mark.parametrize("argv", [
    ["workload", "show", "MISSING_ONNX"],
    ["workload", "show", "JUNK_ONNX"],
    ["workload", "show", "no_such_pkg_xyz:Model"],
    ["workload", "show", f"{FIXTURE}:ReluMlp"],
    ["workload", "show", f"{FIXTURE}:TinyLlama(layers=)"],
    ["workload", "show", f"{FIXTURE}:TinyLlama", "--phase", "encode"],
])
def test_cli_bad_model_is_one_line_exit_2(capsys, tmp_path, argv):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"garbage")
    subst = {"MISSING_ONNX": str(tmp_path / "none.onnx"), "JUNK_ONNX": str(junk)}
    assert main([subst.get(a, a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "Traceback" not in captured.err + captured.out
