"""Parameter counts of a SAIL-VL2 config, from a model built on the meta device (no memory,
exact for any size): total, active per token (MoE: only the top-k routed experts), per part,
and the main shapes."""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers.initialization import no_init_weights

from policy.config import SAILVLConfig, resolve_attn_implementation
from policy.modeling import SAILVLModel


def parameter_summary(config: SAILVLConfig) -> dict[str, Any]:
    """Counts and shapes; every parameter counted once (a tied lm_head is the embedding);
    ``active_params`` counts ``num_experts_per_tok`` of ``num_experts`` routed experts in
    each MoE layer."""
    config = copy.deepcopy(config)
    llm_attn = getattr(config.llm_config, "_attn_implementation", None)
    if resolve_attn_implementation(llm_attn) != llm_attn:  # e.g. flash-attn asked, not here
        config.llm_config._attn_implementation = resolve_attn_implementation(llm_attn)
    with torch.device("meta"), no_init_weights():
        model = SAILVLModel(config)
    by_part = {"vision_model": 0, "mlp1": 0, "language_model": 0}
    experts = 0
    # On the meta device the tied head is a separate tensor: count it once, as the embedding.
    tied = bool(getattr(config.llm_config, "tie_word_embeddings", False))
    for name, param in model.named_parameters():
        if tied and name == "language_model.lm_head.weight":
            continue
        by_part[name.split(".")[0]] += param.numel()
        if ".mlp.experts." in name:
            experts += param.numel()
    total = sum(by_part.values())
    llm = config.llm_config
    active = total
    if config.is_moe:
        active = total - experts + experts * llm.num_experts_per_tok // llm.num_experts
    vision = config.vision_config
    shapes = {
        "vision": (
            f"{vision.num_hidden_layers} blocks x {vision.hidden_size} hidden, "
            f"{vision.num_attention_heads} heads, mlp {vision.intermediate_size}; "
            f"select_layer {config.select_layer} uses {config.num_vision_blocks_used} blocks"
        ),
        "tile": (
            f"{config.force_image_size}px, patch {config.patch_size} -> "
            f"{config.num_patches_per_side**2} patches -> {config.num_image_token} tokens"
        ),
        "adapter": f"LayerNorm({model.mlp1[1].in_features}) -> {llm.hidden_size} -> {llm.hidden_size}",
        "llm": (
            f"{llm.num_hidden_layers} layers x {llm.hidden_size} hidden, "
            f"{llm.num_attention_heads} heads / {llm.num_key_value_heads} kv, head_dim "
            f"{getattr(llm, 'head_dim', llm.hidden_size // llm.num_attention_heads)}, "
            f"vocab {llm.vocab_size}"
        ),
    }
    if config.is_moe:
        shapes["moe"] = (
            f"{llm.num_experts} experts, top-{llm.num_experts_per_tok}, "
            f"expert mlp {llm.moe_intermediate_size}"
        )
    else:
        shapes["mlp"] = f"{llm.intermediate_size}"
    return {
        "llm_architecture": config.llm_architecture,
        "total_params": total,
        "tied_lm_head": tied,
        "active_params": active,
        "by_part": by_part,
        "shapes": shapes,
    }
