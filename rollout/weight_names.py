"""The one table that maps ``policy/`` parameter names to the vLLM model's parameters.

Weights always travel in ``policy/`` names (checkpoint files and sync buckets alike); the
vLLM layers fuse some of them on load (q/k/v -> ``qkv_proj``, gate/up -> ``gate_up_proj``,
fc1/fc3 -> ``fc13``, experts -> ``w13_weight`` / ``w2_weight``). ``WEIGHT_NAME_RULES``
states each of those correspondences once; ``tests/test_rollout_units.py`` (policy model) and
``tests/test_rollout_engine.py`` (vLLM model) check it against both models so that a renamed parameter on either side fails a test instead of being silently
skipped. Names of vision blocks the vLLM side does not build (after ``select_layer``) map to
``None``: they are dropped on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policy.config import vision_blocks_for


@dataclass(frozen=True)
class WeightRule:
    """``policy`` names matching ``pattern`` load into the vLLM parameter ``target``
    (``\\1``-style groups substituted) as shard ``shard`` (None: the whole tensor)."""

    pattern: str
    target: str
    shard: str | int | None = None


@dataclass(frozen=True)
class VllmTarget:
    """Where one ``policy`` tensor lands in the vLLM model."""

    param: str
    shard: str | int | None


_L = r"language_model\.model\.layers\.(\d+)"
_B = r"vision_model\.trunk\.blocks\.(\d+)"

WEIGHT_NAME_RULES: tuple[WeightRule, ...] = (
    # -- vision tower (vLLM aimv2.py keeps the SAIL-ViT names, fusing fc1/fc3) -------------
    WeightRule(
        r"vision_model\.preprocessor\.patchifier\.proj\.(weight|bias)",
        r"vision_model.preprocessor.patchifier.proj.\1",
    ),
    WeightRule(
        r"vision_model\.preprocessor\.patchifier\.norm\.weight",
        "vision_model.preprocessor.patchifier.norm.weight",
    ),
    WeightRule(r"vision_model\.preprocessor\.pos_embed", "vision_model.preprocessor.pos_embed"),
    WeightRule(_B + r"\.attn\.qkv\.(weight|bias)", r"vision_model.trunk.blocks.\1.attn.qkv.\2"),
    WeightRule(_B + r"\.attn\.proj\.(weight|bias)", r"vision_model.trunk.blocks.\1.attn.proj.\2"),
    WeightRule(_B + r"\.norm_(1|2)\.weight", r"vision_model.trunk.blocks.\1.norm_\2.weight"),
    WeightRule(_B + r"\.mlp\.fc1\.(weight|bias)", r"vision_model.trunk.blocks.\1.mlp.fc13.\2", 0),
    WeightRule(_B + r"\.mlp\.fc3\.(weight|bias)", r"vision_model.trunk.blocks.\1.mlp.fc13.\2", 1),
    WeightRule(_B + r"\.mlp\.fc2\.(weight|bias)", r"vision_model.trunk.blocks.\1.mlp.fc2.\2"),
    WeightRule(
        r"vision_model\.trunk\.post_trunk_norm\.weight", "vision_model.trunk.post_trunk_norm.weight"
    ),
    # -- adapter (plain torch layers on both sides) ----------------------------------------
    WeightRule(r"mlp1\.(0|1|3)\.(weight|bias)", r"mlp1.\1.\2"),
    # -- language model: Qwen3 / Qwen3-MoE ---------------------------------------------------
    WeightRule(
        r"language_model\.model\.embed_tokens\.weight", "language_model.model.embed_tokens.weight"
    ),
    WeightRule(r"language_model\.model\.norm\.weight", "language_model.model.norm.weight"),
    WeightRule(r"language_model\.lm_head\.weight", "language_model.lm_head.weight"),
    WeightRule(
        _L + r"\.self_attn\.(q|k|v)_proj\.weight",
        r"language_model.model.layers.\1.self_attn.qkv_proj.weight",
        "qkv",
    ),
    WeightRule(
        _L + r"\.self_attn\.o_proj\.weight",
        r"language_model.model.layers.\1.self_attn.o_proj.weight",
    ),
    WeightRule(
        _L + r"\.self_attn\.(q|k)_norm\.weight",
        r"language_model.model.layers.\1.self_attn.\2_norm.weight",
    ),
    WeightRule(
        _L + r"\.(input_layernorm|post_attention_layernorm)\.weight",
        r"language_model.model.layers.\1.\2.weight",
    ),
    # dense MLP
    WeightRule(
        _L + r"\.mlp\.gate_proj\.weight",
        r"language_model.model.layers.\1.mlp.gate_up_proj.weight",
        0,
    ),
    WeightRule(
        _L + r"\.mlp\.up_proj\.weight", r"language_model.model.layers.\1.mlp.gate_up_proj.weight", 1
    ),
    WeightRule(
        _L + r"\.mlp\.down_proj\.weight", r"language_model.model.layers.\1.mlp.down_proj.weight"
    ),
    # MoE: router, then experts as transformers holds them in memory (fused 3-D tensors)
    WeightRule(_L + r"\.mlp\.gate\.weight", r"language_model.model.layers.\1.mlp.gate.weight"),
    WeightRule(
        _L + r"\.mlp\.experts\.gate_up_proj",
        r"language_model.model.layers.\1.mlp.experts.routed_experts.w13_weight",
        "w1+w3",
    ),
    WeightRule(
        _L + r"\.mlp\.experts\.down_proj",
        r"language_model.model.layers.\1.mlp.experts.routed_experts.w2_weight",
        "w2",
    ),
    # ... and as checkpoints store them (one tensor per expert)
    WeightRule(
        _L + r"\.mlp\.experts\.(\d+)\.gate_proj\.weight",
        r"language_model.model.layers.\1.mlp.experts.routed_experts.w13_weight",
        "w1",
    ),
    WeightRule(
        _L + r"\.mlp\.experts\.(\d+)\.up_proj\.weight",
        r"language_model.model.layers.\1.mlp.experts.routed_experts.w13_weight",
        "w3",
    ),
    WeightRule(
        _L + r"\.mlp\.experts\.(\d+)\.down_proj\.weight",
        r"language_model.model.layers.\1.mlp.experts.routed_experts.w2_weight",
        "w2",
    ),
)

_COMPILED = tuple((re.compile(rule.pattern), rule) for rule in WEIGHT_NAME_RULES)
_BLOCK = re.compile(_B + r"\.")


class UnknownWeightError(KeyError):
    """A weight name that no rule of WEIGHT_NAME_RULES maps."""


def vision_blocks_used(config) -> int:
    """Vision blocks the selected feature layer needs (the vLLM side builds only these).

    AIMv2 indexing: hidden_states = [block 1, ..., block L]; -1 is block L + final norm.
    """
    return vision_blocks_for(config.select_layer, config.vision_config.num_hidden_layers)


def vllm_target(name: str, config) -> VllmTarget | None:
    """The vLLM parameter (and shard) a ``policy`` weight loads into; None if the vLLM side
    drops it on purpose (an unbuilt vision block, an unused final vision norm).

    Raises UnknownWeightError naming the weight when no rule matches.
    """
    for regex, rule in _COMPILED:
        match = regex.fullmatch(name)
        if match is None:
            continue
        if not keep_for_vllm(name, config):
            return None
        return VllmTarget(param=match.expand(rule.target), shard=rule.shard)
    raise UnknownWeightError(
        f"weight {name!r} has no entry in rollout.weight_names.WEIGHT_NAME_RULES: "
        "it is not a SAIL-VL2 parameter name (send policy/ parameter names)"
    )


def keep_for_vllm(name: str, config) -> bool:
    """False for weights of vision parts the vLLM model does not build."""
    block = _BLOCK.match(name)
    if block is not None:
        return int(block.group(1)) < vision_blocks_used(config)
    if name == "vision_model.trunk.post_trunk_norm.weight":
        return config.select_layer == -1
    return True


def check_names(names, config) -> list[str]:
    """The names vLLM will load, in order; raises UnknownWeightError on the first bad name."""
    return [name for name in names if vllm_target(name, config) is not None]
