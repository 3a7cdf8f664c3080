"""Named model shapes. ``tiny`` and ``tiny-moe`` build in seconds for tests and the demo;
``sailvl2-2b``, ``sailvl2-8b`` and ``sailvl2-30b-a3b`` record the public model shapes
(documented, never instantiated in tests).

head_dim is 64 everywhere: vLLM's CPU attention rejects head_dim 16.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers loads where a config is built, not where presets are named
    from policy.config import SAILVLConfig

# SAIL-ViT-Huge (AIMv2-Huge-448 shape; unverified against the public weights, see docs/model.md).
_VIT_HUGE = {
    "hidden_size": 1536,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 12,
    "patch_size": 14,
    "image_size": 448,
    "rms_norm_eps": 1e-5,
    "qkv_bias": False,
    "mlp_bias": False,
}
_VIT_TINY = {
    "hidden_size": 128,
    "intermediate_size": 256,
    # 5 blocks: the default select_layer -4 then runs 2 of them (output of block 2).
    "num_hidden_layers": 5,
    "num_attention_heads": 2,
    "patch_size": 14,
    "image_size": 448,
    "rms_norm_eps": 1e-5,
    "qkv_bias": False,
    "mlp_bias": False,
}
_LLM_TINY = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "intermediate_size": 256,
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
    "tie_word_embeddings": False,
}
# Qwen3 public shapes (Qwen3-1.7B, Qwen3-8B, Qwen3-30B-A3B config.json values).
_QWEN3_COMMON = {
    "vocab_size": 151936,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "vision_config": _VIT_TINY,
        "llm_config": {"architectures": ["Qwen3ForCausalLM"], **_LLM_TINY},
        "max_dynamic_patch": 4,
    },
    "tiny-moe": {
        "vision_config": _VIT_TINY,
        "llm_config": {
            "architectures": ["Qwen3MoeForCausalLM"],
            **_LLM_TINY,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": 64,
            "norm_topk_prob": True,
            "router_aux_loss_coef": 0.001,
            "decoder_sparse_step": 1,
        },
        "max_dynamic_patch": 4,
    },
    # ~106M parameters: the tiny vision tower and a 1024-wide, 8-layer Qwen3; for benchmarks
    # that need a model big enough for per-step overheads not to dominate.
    "small": {
        "vision_config": _VIT_TINY,
        "llm_config": {
            "architectures": ["Qwen3ForCausalLM"],
            **_LLM_TINY,
            "hidden_size": 1024,
            "intermediate_size": 3072,
            "num_hidden_layers": 8,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
        },
        "max_dynamic_patch": 4,
    },
    "sailvl2-2b": {
        "vision_config": _VIT_HUGE,
        "llm_config": {
            "architectures": ["Qwen3ForCausalLM"],
            **_QWEN3_COMMON,
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": 28,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "tie_word_embeddings": True,
        },
    },
    "sailvl2-8b": {
        "vision_config": _VIT_HUGE,
        "llm_config": {
            "architectures": ["Qwen3ForCausalLM"],
            **_QWEN3_COMMON,
            "hidden_size": 4096,
            "intermediate_size": 12288,
            "num_hidden_layers": 36,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "tie_word_embeddings": False,
        },
    },
    "sailvl2-30b-a3b": {
        "vision_config": _VIT_HUGE,
        "llm_config": {
            "architectures": ["Qwen3MoeForCausalLM"],
            **_QWEN3_COMMON,
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "num_hidden_layers": 48,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "num_experts": 128,
            "num_experts_per_tok": 8,
            "moe_intermediate_size": 768,
            "norm_topk_prob": True,
            "router_aux_loss_coef": 0.001,
            "tie_word_embeddings": False,
        },
    },
}
TINY_PRESETS = ("tiny", "tiny-moe", "small")  # built with the local tiny tokenizer


def preset_config(name: str, *, vocab_size: int | None = None, **overrides: Any) -> SAILVLConfig:
    """The SAILVLConfig of preset ``name``; ``vocab_size`` sets the LLM vocabulary (tiny
    presets take it from their tokenizer); other keyword arguments override top-level keys,
    and ``llm_config`` / ``vision_config`` dicts override single keys of the preset's.

    >>> preset_config("tiny-moe", llm_config={"num_hidden_layers": 4}).llm_config.num_hidden_layers
    4
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[name]
    nested = {}
    for key in ("llm_config", "vision_config"):
        given = overrides.pop(key, None) or {}
        if not isinstance(given, dict):
            raise ValueError(f"{key}: give a mapping of keys to override, got {given!r}")
        nested[key] = given
    llm = {**spec["llm_config"], **nested["llm_config"]}
    if vocab_size is not None:
        llm["vocab_size"] = vocab_size
    values = {k: v for k, v in spec.items() if k not in ("vision_config", "llm_config")}
    values.update(overrides)
    vision = {**spec["vision_config"], **nested["vision_config"]}
    if "force_image_size" in overrides:  # the tile size is the encoder's input size
        vision["image_size"] = overrides["force_image_size"]
    from policy.config import SAILVLConfig

    return SAILVLConfig(vision_config=vision, llm_config=llm, **values)
