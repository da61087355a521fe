"""Hugging Face ``config.json`` -> :class:`Workload` (validated, one-line errors)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from .model import (
    DECODER_MODEL_TYPES,
    VLM_MODEL_TYPES,
    DecoderConfig,
    VisionConfig,
    VlmConfig,
    Workload,
)

__all__ = ["workload_from_hf", "read_config_json", "decoder_from_hf", "vision_from_hf"]

_DECODER_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads")

#: transformers' Idefics3VisionConfig defaults, used for keys a vision_config leaves out
#: (src/transformers/models/idefics3/configuration_idefics3.py, Idefics3VisionConfig.__init__).
_VISION_DEFAULTS = {"hidden_size": 1152, "intermediate_size": 3072, "num_hidden_layers": 12,
                    "num_attention_heads": 16, "num_channels": 3, "image_size": 224,
                    "patch_size": 32, "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
#: Idefics3Config default pixel-shuffle factor (same file, Idefics3Config.__init__).
_DEFAULT_SCALE_FACTOR = 2


def _get(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise InputError(f"{where}: config is missing required key {key!r}")
    return cfg[key]


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    """A positive int key (``default`` when absent or null; required when no default)."""
    value = cfg.get(key)
    if value is None:
        if default is None:
            return _get(cfg, key, where)
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{where}: {key} must be a positive int, not {value!r}")
    return value


def _flag(cfg: Mapping[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def decoder_from_hf(cfg: Mapping[str, Any], where: str = "config",
                    default_model_type: str | None = None) -> DecoderConfig:
    """A Llama-family text config (``model_type`` llama, mistral, qwen2 or qwen3).

    Defaults follow transformers' config classes: ``num_key_value_heads`` = heads,
    ``head_dim`` = hidden / heads, ``tie_word_embeddings`` false, ``attention_bias`` false.
    """
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object, not {type(cfg).__name__}")
    model_type = cfg.get("model_type", default_model_type)
    if model_type not in DECODER_MODEL_TYPES:
        raise InputError(f"{where}: unsupported model_type {model_type!r} "
                         f"(supported: {', '.join(DECODER_MODEL_TYPES + VLM_MODEL_TYPES)})")
    for key in _DECODER_REQUIRED:
        _int(cfg, key, where)
    act = cfg.get("hidden_act", "silu")
    if act != "silu":
        raise InputError(f"{where}: unsupported hidden_act {act!r} (SwiGLU with silu only)")
    if cfg.get("num_local_experts") or cfg.get("num_experts"):
        raise InputError(f"{where}: mixture-of-experts layers are not supported")
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv_heads = _int(cfg, "num_key_value_heads", where, default=heads)
    if cfg.get("head_dim") is None and hidden % heads:
        raise InputError(f"{where}: hidden_size {hidden} is not a multiple of "
                         f"num_attention_heads {heads} and no head_dim is given")
    head_dim = _int(cfg, "head_dim", where, default=hidden // heads)
    # Which projections carry a bias (transformers modeling_<type>.py):
    #   llama:  q/k/v/o follow attention_bias, gate/up/down follow mlp_bias
    #   mistral: none;  qwen2: q/k/v always, o never;  qwen3: q/k/v/o follow attention_bias
    attention_bias = _flag(cfg, "attention_bias", where)
    qkv_bias = {"llama": attention_bias, "mistral": False, "qwen2": True,
                "qwen3": attention_bias}[model_type]
    o_bias = {"llama": attention_bias, "mistral": False, "qwen2": False,
              "qwen3": attention_bias}[model_type]
    mlp_bias = _flag(cfg, "mlp_bias", where) and model_type == "llama"
    window = cfg.get("sliding_window")
    if model_type in ("qwen2", "qwen3") and not _flag(cfg, "use_sliding_window", where):
        window = None      # Qwen configs carry a sliding_window that is off by default
    if model_type == "llama":
        window = None
    try:
        return DecoderConfig(
            model_type=model_type,
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            tie_word_embeddings=_flag(cfg, "tie_word_embeddings", where),
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            mlp_bias=mlp_bias,
            qk_norm=model_type == "qwen3",
            rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
            rope_theta=cfg.get("rope_theta", 10000.0),
            max_position_embeddings=cfg.get("max_position_embeddings", 2048),
            sliding_window=window,
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None


def vision_from_hf(cfg: Mapping[str, Any], where: str = "vision_config") -> VisionConfig:
    """A SigLIP ``vision_config``; missing keys take transformers' Idefics3 defaults."""
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object, not {type(cfg).__name__}")
    v = {k: d if cfg.get(k) is None else cfg[k] for k, d in _VISION_DEFAULTS.items()}
    try:
        return VisionConfig(
            hidden_size=v["hidden_size"],
            intermediate_size=v["intermediate_size"],
            num_layers=v["num_hidden_layers"],
            num_heads=v["num_attention_heads"],
            image_size=v["image_size"],
            patch_size=v["patch_size"],
            num_channels=v["num_channels"],
            layer_norm_eps=v["layer_norm_eps"],
            hidden_act=v["hidden_act"],
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None


def workload_from_hf(cfg: Mapping[str, Any], name: str, source: str = "") -> Workload:
    """A :class:`Workload` from a parsed ``config.json`` (LLM or Idefics3/SmolVLM VLM)."""
    if not isinstance(cfg, Mapping):
        raise InputError(f"{name}: config must be a JSON object, not {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    notes: list[str] = []
    model: DecoderConfig | VlmConfig
    if model_type in VLM_MODEL_TYPES:
        text_cfg = _get(cfg, "text_config", name)
        vision_cfg = _get(cfg, "vision_config", name)
        text = decoder_from_hf(text_cfg, f"{name}: text_config", default_model_type="llama")
        # Idefics3ForConditionalGeneration's lm_head ties by the top-level flag when present
        if cfg.get("tie_word_embeddings") is not None:
            text = replace(text, tie_word_embeddings=_flag(cfg, "tie_word_embeddings", name))
        vision = vision_from_hf(vision_cfg, f"{name}: vision_config")
        try:
            model = VlmConfig(model_type=model_type, text=text, vision=vision,
                              scale_factor=cfg.get("scale_factor", _DEFAULT_SCALE_FACTOR))
        except (TypeError, ValueError) as e:
            raise InputError(f"{name}: {e}") from None
        notes.append("image splitting off: one image = one "
                     f"{vision.image_size}x{vision.image_size} tile, "
                     f"{model.visual_tokens_per_image} visual tokens")
    else:
        model = decoder_from_hf(cfg, name)
    text_model = model.text if isinstance(model, VlmConfig) else model
    if text_model.sliding_window is not None:
        notes.append(f"sliding_window {text_model.sliding_window}: attention FLOPs and KV "
                     f"bytes are counted over the full context (an upper bound beyond the window)")
    try:
        return Workload(name=name, model=model, source=source, notes=tuple(notes))
    except (TypeError, ValueError) as e:
        raise InputError(f"{name}: {e}") from None


def read_config_json(path: str | Path) -> dict[str, Any]:
    """Parse a ``config.json``; a missing or malformed file is an :class:`InputError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"config file not found: {p}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read config file {p}: {type(e).__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON in {p}: {e.msg} at line {e.lineno} "
                         f"column {e.colno}") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: config must be a JSON object, not {type(data).__name__}")
    return data
