"""Built-in workloads, the loader (names, config.json, ONNX files, torch modules), summaries."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError
from .builder import BYTES_PER_ELEM, build_graph
from .hf import read_config_json, workload_from_hf
from .imported import ImportedWorkload
from .model import Workload
from .onnx_import import load_onnx_workload
from .torch_import import is_torch_spec, load_torch_workload

__all__ = ["WORKLOAD_NAMES", "load_workload", "builtin_provenance", "workload_summary"]

#: Built-in workload names; each is ``configs/<name>.json`` inside this package.
WORKLOAD_NAMES = ("llama3.1-8b", "smolvlm-256m", "smolvlm-500m", "smolvlm-2.2b")

#: Key under which a built-in config.json records where it comes from (ignored by parsing).
_PROVENANCE_KEY = "_llm2silicon"


@cache
def _builtin_json(name: str) -> str:
    return resources.files("explorer.workloads.configs").joinpath(f"{name}.json").read_text(
        encoding="utf-8")


def builtin_provenance(name: str) -> dict[str, Any]:
    """Source record of a built-in: HF repo, revision, expected params and their source."""
    if name not in WORKLOAD_NAMES:
        raise InputError(f"unknown workload {name!r} (built-ins: {', '.join(WORKLOAD_NAMES)})")
    return dict(json.loads(_builtin_json(name))[_PROVENANCE_KEY])


@cache
def _load_builtin(name: str) -> Workload:
    cfg = json.loads(_builtin_json(name))
    return workload_from_hf(cfg, name, source=cfg[_PROVENANCE_KEY]["hf_repo"])


def _name_for(path: Path, cfg: dict[str, Any]) -> str:
    """A readable name for a config file: its HF id, else its folder (for config.json)."""
    hf_id = cfg.get("_name_or_path")
    if isinstance(hf_id, str) and hf_id.strip("/"):
        return hf_id.rstrip("/").rsplit("/", 1)[-1]
    if path.stem == "config" and path.resolve().parent.name:
        return path.resolve().parent.name
    return path.stem


def load_workload(name_or_path: str | Path) -> Workload | ImportedWorkload:
    """A built-in name (:data:`WORKLOAD_NAMES`), an HF-style ``config.json`` path, an ONNX
    file (``*.onnx``) or a torch module spec (``pkg.module:Class``, ``file.py:Class``,
    optionally ``(key=value, ...)``; see :mod:`explorer.workloads.torch_import`).

    Nothing is downloaded and no weight is read. A missing file, malformed JSON, an
    unsupported architecture or op, or a missing key is an
    :class:`~explorer.errors.InputError` with a one-line message.
    """
    if isinstance(name_or_path, str) and name_or_path in WORKLOAD_NAMES:
        return _load_builtin(name_or_path)
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(f"workload must be a name or a path, not {type(name_or_path).__name__}")
    if str(name_or_path).lower().endswith(".onnx"):
        return load_onnx_workload(name_or_path)
    if isinstance(name_or_path, str) and not name_or_path.endswith(".json") \
            and is_torch_spec(name_or_path):
        return load_torch_workload(name_or_path)
    path = Path(name_or_path)
    if not path.exists() and path.suffix != ".json" and len(path.parts) == 1:
        raise InputError(f"unknown workload {str(name_or_path)!r} (built-ins: "
                         f"{', '.join(WORKLOAD_NAMES)}; or give a config.json path, a "
                         f"model.onnx path or a module:Class spec)")
    cfg = read_config_json(path)
    return workload_from_hf(cfg, _name_for(path, cfg), source=str(path))


def workload_summary(workload: Workload | ImportedWorkload, *, kv_len: int = 2048, seq_len: int = 2048,
                     images: int = 1, dtype: str = "fp16") -> dict[str, Any]:
    """Headline figures of a workload (JSON-ready).

    ``flops_per_token_decode`` is the batch-1 decode graph's FLOPs at ``kv_len``;
    ``flops_prefill`` one ``seq_len`` prompt; ``flops_encode`` one image (VLMs).
    """
    if isinstance(workload, ImportedWorkload):
        return workload.summary(kv_len=kv_len, seq_len=seq_len, dtype=dtype)
    d = workload.decoder
    decode = build_graph(workload, "decode", kv_len=kv_len, batch=1, dtype=dtype)  # validates
    bpe = BYTES_PER_ELEM[dtype]
    prefill = build_graph(workload, "prefill", seq_len=seq_len, batch=1, dtype=dtype)
    out: dict[str, Any] = {
        "name": workload.name,
        "source": workload.source,
        "model_type": workload.model_type,
        "dtype": dtype,
        "params": workload.params,
        "params_by_block": workload.param_breakdown(),
        "n_layers": d.num_layers,
        "hidden_size": d.hidden_size,
        "num_heads": d.num_heads,
        "num_kv_heads": d.num_kv_heads,
        "head_dim": d.head_dim,
        "intermediate_size": d.intermediate_size,
        "vocab_size": d.vocab_size,
        "tie_word_embeddings": d.tie_word_embeddings,
        "weight_bytes": workload.params * bpe,
        "kv_bytes_per_token": d.kv_elems_per_token * bpe,
        "kv_len": kv_len,
        "seq_len": seq_len,
        "flops_per_token_decode": decode.flops,
        "flops_decode": decode.flops,
        "flops_prefill": prefill.flops,
        "flops_per_token_prefill": prefill.flops / prefill.meta["tokens"],
        "decode_weight_read_bytes": int(decode.total("weight_read_bytes")),
        "decode_kv_read_bytes": int(decode.total("kv_read_bytes")),
        "ops": len(decode),
        "ops_prefill": len(prefill),
        "op_kinds": decode.kind_counts(),
        "notes": list(workload.notes),
    }
    if workload.is_vlm:
        encode = build_graph(workload, "encode", images=images, dtype=dtype)
        out.update(images=images, flops_encode=encode.flops, ops_encode=len(encode),
                   visual_tokens_per_image=encode.meta["visual_tokens_per_image"],
                   vision_layers=encode.meta["n_layers"],
                   vision_hidden_size=encode.meta["hidden_size"])
    return out
