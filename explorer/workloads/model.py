"""Model descriptions: Llama-family decoders, SigLIP vision encoders, Idefics3 VLMs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["DECODER_MODEL_TYPES", "VLM_MODEL_TYPES", "DecoderConfig", "VisionConfig",
           "VlmConfig", "Workload"]

#: Text decoders this layer understands: RoPE + GQA attention, SwiGLU MLP, RMSNorm.
DECODER_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
#: Vision-language models: SigLIP encoder + pixel-shuffle connector + Llama decoder.
VLM_MODEL_TYPES = ("idefics3", "smolvlm")
_GELU_ACTS = ("gelu_pytorch_tanh", "gelu", "gelu_new", "gelu_fast")


def _check_fields(obj: Any) -> None:
    """Type-check the annotated int/bool/float/str fields of a config dataclass."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        name = f"{type(obj).__name__}.{f.name}"
        if kind == "int":
            # bool is an int subclass; a JSON true where a count belongs is a mistake
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        elif kind == "bool" and not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {value!r}")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {value!r}")
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value}")
        elif kind == "str" and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {value!r}")


@dataclass(frozen=True)
class DecoderConfig:
    """A Llama-family decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP.

    Members
    -------
    num_kv_heads : K/V heads (GQA); ``num_heads`` must be a multiple of it.
    head_dim : per-head width; ``hidden_size / num_heads`` unless the config gives it
        (Mistral, Qwen3), in which case q/o projections are ``hidden x heads*head_dim``.
    qkv_bias / o_bias / mlp_bias : bias vectors on q/k/v, on o_proj, on gate/up/down.
        Llama's ``attention_bias`` sets both qkv and o; Qwen2 always has qkv bias only.
    qk_norm : Qwen3's per-head RMSNorm on q and k (a ``head_dim`` weight each).
    sliding_window : Mistral-style window (recorded; the graphs count full attention).
    """

    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    sliding_window: int | None = None

    def __post_init__(self) -> None:
        if self.model_type not in DECODER_MODEL_TYPES:
            raise ValueError(f"DecoderConfig.model_type must be one of "
                             f"{', '.join(DECODER_MODEL_TYPES)}, not {self.model_type!r}")
        _check_fields(self)
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"DecoderConfig.num_heads must be a multiple of num_kv_heads "
                             f"({self.num_kv_heads}), not {self.num_heads}")
        if self.head_dim % 2:
            raise ValueError(f"DecoderConfig.head_dim must be even for RoPE, not {self.head_dim}")
        if self.sliding_window is not None and (
                isinstance(self.sliding_window, bool) or not isinstance(self.sliding_window, int)
                or self.sliding_window <= 0):
            raise ValueError(f"DecoderConfig.sliding_window must be a positive int or None, "
                             f"not {self.sliding_window!r}")

    @property
    def q_dim(self) -> int:
        """Width of the query projection output (num_heads x head_dim)."""
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of each of the key and value projection outputs."""
        return self.num_kv_heads * self.head_dim

    @property
    def embed_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Parameters lm_head owns: 0 when tied to the embedding table."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def attn_params(self) -> int:
        """q/k/v/o weights and biases (+ q/k norms) of one layer."""
        h, q, kv = self.hidden_size, self.q_dim, self.kv_dim
        p = h * q + 2 * h * kv + q * h
        p += (q + 2 * kv) if self.qkv_bias else 0
        p += h if self.o_bias else 0
        p += 2 * self.head_dim if self.qk_norm else 0
        return p

    @property
    def mlp_params(self) -> int:
        """gate/up/down weights and biases of one layer."""
        h, i = self.hidden_size, self.intermediate_size
        return 3 * h * i + ((2 * i + h) if self.mlp_bias else 0)

    @property
    def layer_params(self) -> int:
        """One decoder layer: attention, MLP and its two RMSNorm weights."""
        return self.attn_params + self.mlp_params + 2 * self.hidden_size

    @property
    def params(self) -> int:
        """Total: embeddings + layers + final norm + (untied) lm_head."""
        return (self.embed_params + self.num_layers * self.layer_params + self.hidden_size
                + self.lm_head_params)

    @property
    def kv_elems_per_token(self) -> int:
        """KV-cache elements one token adds over all layers (K and V)."""
        return 2 * self.num_layers * self.kv_dim


@dataclass(frozen=True)
class VisionConfig:
    """A SigLIP vision encoder as used by Idefics3/SmolVLM.

    Conv patch embedding (with bias), learned position embeddings (one per patch), pre-LN
    layers (LayerNorm with bias, q/k/v/out projections with bias, GELU MLP with bias) and a
    post-LayerNorm. No class token.
    """

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    image_size: int
    patch_size: int
    num_channels: int = 3
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu_pytorch_tanh"

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.hidden_size % self.num_heads:
            raise ValueError(f"VisionConfig.hidden_size must be a multiple of num_heads "
                             f"({self.num_heads}), not {self.hidden_size}")
        if self.image_size < self.patch_size:
            raise ValueError(f"VisionConfig.image_size must be at least patch_size "
                             f"({self.patch_size}), not {self.image_size}")
        if self.hidden_act not in _GELU_ACTS:
            raise ValueError(f"VisionConfig.hidden_act must be one of {', '.join(_GELU_ACTS)}, "
                             f"not {self.hidden_act!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patches_per_side(self) -> int:
        """Conv positions per side: stride = kernel = patch, no padding, so a remainder
        (SigLIP-SO400M: 384 = 27 x 14 + 6) is dropped."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Tokens the encoder sees per image (= learned position embeddings)."""
        return self.patches_per_side ** 2

    @property
    def patch_dim(self) -> int:
        """Inputs of the patch-embedding conv seen as a matmul: channels x patch x patch."""
        return self.num_channels * self.patch_size ** 2

    @property
    def layer_params(self) -> int:
        d, i = self.hidden_size, self.intermediate_size
        return 4 * (d * d + d) + (d * i + i) + (i * d + d) + 2 * (2 * d)

    @property
    def params(self) -> int:
        d = self.hidden_size
        return ((self.patch_dim * d + d) + self.num_patches * d
                + self.num_layers * self.layer_params + 2 * d)


@dataclass(frozen=True)
class VlmConfig:
    """An Idefics3-style VLM: vision encoder -> pixel shuffle -> Linear (no bias) -> decoder.

    The pixel shuffle folds ``scale_factor x scale_factor`` neighbouring patches into one
    token of ``vision.hidden_size * scale_factor**2`` features.
    """

    model_type: str
    text: DecoderConfig
    vision: VisionConfig
    scale_factor: int

    def __post_init__(self) -> None:
        if self.model_type not in VLM_MODEL_TYPES:
            raise ValueError(f"VlmConfig.model_type must be one of {', '.join(VLM_MODEL_TYPES)}, "
                             f"not {self.model_type!r}")
        if not isinstance(self.text, DecoderConfig):
            raise TypeError(f"VlmConfig.text must be a DecoderConfig, not {self.text!r}")
        if not isinstance(self.vision, VisionConfig):
            raise TypeError(f"VlmConfig.vision must be a VisionConfig, not {self.vision!r}")
        if isinstance(self.scale_factor, bool) or not isinstance(self.scale_factor, int):
            raise TypeError(f"VlmConfig.scale_factor must be an int, not {self.scale_factor!r}")
        if self.scale_factor <= 0 or self.vision.patches_per_side % self.scale_factor:
            raise ValueError(f"VlmConfig.scale_factor must divide the {self.vision.patches_per_side}"
                             f" patches per side, not {self.scale_factor}")

    @property
    def connector_in_features(self) -> int:
        return self.vision.hidden_size * self.scale_factor ** 2

    @property
    def visual_tokens_per_image(self) -> int:
        return self.vision.num_patches // self.scale_factor ** 2

    @property
    def connector_params(self) -> int:
        return self.connector_in_features * self.text.hidden_size

    @property
    def params(self) -> int:
        return self.vision.params + self.connector_params + self.text.params


@dataclass(frozen=True)
class Workload:
    """A named model: what the graph builder, the PPA model and the CLI consume.

    ``source`` says where the description came from (a Hugging Face repo id for the
    built-ins, a file path otherwise); ``notes`` carries caveats (e.g. a sliding window).
    """

    name: str
    model: DecoderConfig | VlmConfig
    source: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Workload.name must be a non-empty str, not {self.name!r}")
        if not isinstance(self.model, (DecoderConfig, VlmConfig)):
            raise TypeError(f"Workload.model must be a DecoderConfig or VlmConfig, "
                            f"not {type(self.model).__name__}")
        if not isinstance(self.notes, tuple):
            raise TypeError(f"Workload.notes must be a tuple, not {type(self.notes).__name__}")

    @property
    def is_vlm(self) -> bool:
        return isinstance(self.model, VlmConfig)

    @property
    def decoder(self) -> DecoderConfig:
        """The text decoder (the whole model for an LLM)."""
        return self.model.text if isinstance(self.model, VlmConfig) else self.model

    @property
    def vision(self) -> VisionConfig | None:
        return self.model.vision if isinstance(self.model, VlmConfig) else None

    @property
    def model_type(self) -> str:
        return self.model.model_type

    @property
    def params(self) -> int:
        return self.model.params

    @property
    def phases(self) -> tuple[str, ...]:
        """Phases :func:`build_graph` accepts for this workload."""
        return ("prefill", "decode", "encode") if self.is_vlm else ("prefill", "decode")

    def param_breakdown(self) -> dict[str, int]:
        """Parameters per block: decoder (with embeddings), head, vision, connector."""
        d = self.decoder
        out = {"decoder": d.embed_params + d.num_layers * d.layer_params,
               "head": d.hidden_size + d.lm_head_params}
        if isinstance(self.model, VlmConfig):
            out["vision"] = self.model.vision.params
            out["connector"] = self.model.connector_params
        return out
