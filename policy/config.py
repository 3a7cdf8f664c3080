"""SAIL-VL2 model configuration (``model_type = "sailvl"``) in the key layout of the public
SAIL-VL2 remote code, with validation that names the offending key and what to change.

A config holds three parts: ``vision_config`` (an AIMv2-style ``Aimv2VisionConfig``, the
SAIL-ViT tower), ``llm_config`` (a ``Qwen3Config`` or ``Qwen3MoeConfig`` chosen by
``llm_config["architectures"][0]``) and the adapter / image-tiling keys.
"""

from __future__ import annotations

from typing import Any

from transformers import Aimv2VisionConfig, PretrainedConfig, Qwen3Config, Qwen3MoeConfig

# llm_config["architectures"][0] -> the transformers config class that reads it.
LLM_CONFIG_CLASSES: dict[str, type[PretrainedConfig]] = {
    "Qwen3ForCausalLM": Qwen3Config,
    "Qwen3MoeForCausalLM": Qwen3MoeConfig,
}
DEFAULT_LLM_ARCHITECTURE = "Qwen3ForCausalLM"
SUPPORTED_PS_VERSIONS = ("v2",)
# Attribute set by policy.checkpoint.load_checkpoint: the directory the model came from, so
# that saves can keep that checkpoint's layout. Never written to config.json.
SOURCE_ATTR = "_sailrl_source"


class SAILVLConfig(PretrainedConfig):
    """Configuration of a SAIL-VL2 model.

    ``select_layer`` indexes AIMv2's ``hidden_states = [block 1 output, ..., block L output]``
    (index 0 is the first block's output, as in the public remote code), except ``-1``: the
    last block's output after ``post_trunk_norm`` (the remote code's ``last_hidden_state``).
    ``force_image_size`` None (the remote code's default) means ``vision_config.image_size``.
    ``img_context_token_id`` is not a public key: it is filled from the tokenizer when a
    checkpoint is built or loaded (ids are never hard-coded).
    """

    model_type = "sailvl"
    sub_configs = {"vision_config": Aimv2VisionConfig, "llm_config": PretrainedConfig}

    def __init__(
        self,
        vision_config: dict[str, Any] | Aimv2VisionConfig | None = None,
        llm_config: dict[str, Any] | PretrainedConfig | None = None,
        select_layer: int = -4,
        downsample_ratio: float = 0.5,
        force_image_size: int | None = 448,
        dynamic_image_size: bool = True,
        use_thumbnail: bool = True,
        min_dynamic_patch: int = 1,
        max_dynamic_patch: int = 12,
        template: str = "sailvl2",
        ps_version: str = "v2",
        img_context_token_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("architectures", ["SAILVLModel"])
        super().__init__(**kwargs)
        self.vision_config = _build_vision_config(vision_config, force_image_size)
        if force_image_size is None:
            force_image_size = _as_int(self.vision_config.image_size, "vision_config.image_size")
        self.llm_config = _build_llm_config(llm_config)
        self.select_layer = select_layer
        self.downsample_ratio = downsample_ratio
        self.force_image_size = force_image_size
        self.dynamic_image_size = dynamic_image_size
        self.use_thumbnail = use_thumbnail
        self.min_dynamic_patch = min_dynamic_patch
        self.max_dynamic_patch = max_dynamic_patch
        self.template = template
        self.ps_version = ps_version
        self.img_context_token_id = img_context_token_id
        self.check_values()

    # -- derived values -------------------------------------------------------------------
    @property
    def llm_architecture(self) -> str:
        return self.llm_config.architectures[0]

    @property
    def is_moe(self) -> bool:
        return self.llm_architecture == "Qwen3MoeForCausalLM"

    @property
    def patch_size(self) -> int:
        return _as_int(self.vision_config.patch_size, "vision_config.patch_size")

    @property
    def num_patches_per_side(self) -> int:
        return self.force_image_size // self.patch_size

    @property
    def num_image_token(self) -> int:
        """LLM tokens per image tile: (force_image_size // patch_size)**2 * downsample_ratio**2."""
        return int(self.num_patches_per_side**2 * self.downsample_ratio**2)

    @property
    def num_vision_blocks_used(self) -> int:
        """How many ViT blocks the selected feature layer needs (the rest never run)."""
        return vision_blocks_for(self.select_layer, self.vision_config.num_hidden_layers)

    def get_text_config(self, decoder=None, encoder=None) -> PretrainedConfig:
        """The language model's config (generation and caches read it)."""
        # transformers calls this from the base __init__, before llm_config exists.
        return self.__dict__.get("llm_config") or self

    # -- validation -----------------------------------------------------------------------
    def check_values(self) -> None:
        """Raise ValueError naming the key when the configuration cannot describe a model."""
        layers = self.vision_config.num_hidden_layers
        if not isinstance(self.select_layer, int) or not -layers <= self.select_layer < layers:
            raise ValueError(
                f"select_layer={self.select_layer!r} is out of range for a vision tower with "
                f"{layers} blocks: use an int in [{-layers}, {layers - 1}] (AIMv2 hidden_states "
                "indexing; -1 = last block + post_trunk_norm; default -4)"
            )
        if self.downsample_ratio <= 0 or (1 / self.downsample_ratio) % 1:
            raise ValueError(
                f"downsample_ratio={self.downsample_ratio!r} must be 1/k for an integer k "
                "(SAIL-VL2 uses 0.5: 2x2 pixel shuffle)"
            )
        scale = round(1 / self.downsample_ratio)
        patch = self.patch_size
        if self.force_image_size % patch:
            raise ValueError(
                f"force_image_size={self.force_image_size} is not a multiple of "
                f"vision_config.patch_size={patch}"
            )
        if self.num_patches_per_side % scale:
            raise ValueError(
                f"force_image_size // patch_size = {self.num_patches_per_side} patches per side "
                f"is not divisible by 1/downsample_ratio = {scale}; change force_image_size"
            )
        vision_size = _as_int(self.vision_config.image_size, "vision_config.image_size")
        if vision_size != self.force_image_size:
            raise ValueError(
                f"vision_config.image_size={vision_size} differs from "
                f"force_image_size={self.force_image_size}: the position embedding is sized "
                "for one tile size, so set both to the same value"
            )
        if self.ps_version not in SUPPORTED_PS_VERSIONS:
            raise ValueError(
                f"ps_version={self.ps_version!r} is not supported; allowed: {SUPPORTED_PS_VERSIONS}"
            )
        if not 1 <= self.min_dynamic_patch <= self.max_dynamic_patch:
            raise ValueError(
                f"min_dynamic_patch={self.min_dynamic_patch} and max_dynamic_patch="
                f"{self.max_dynamic_patch} must satisfy 1 <= min <= max"
            )
        hidden, heads = self.vision_config.hidden_size, self.vision_config.num_attention_heads
        if hidden % heads:
            raise ValueError(
                f"vision_config.hidden_size={hidden} is not divisible by "
                f"vision_config.num_attention_heads={heads}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop(SOURCE_ATTR, None)  # where the model was loaded from: runtime only
        return out


def vision_blocks_for(select_layer: int, layers: int) -> int:
    """How many of ``layers`` ViT blocks ``select_layer`` needs, with AIMv2's indexing
    (``hidden_states[k]`` is the output of block k + 1; ``-1`` is the last block, normed).

    >>> vision_blocks_for(-4, 24), vision_blocks_for(-1, 24), vision_blocks_for(0, 24)
    (21, 24, 1)
    """
    return select_layer + 1 if select_layer >= 0 else layers + 1 + select_layer


def resolve_attn_implementation(requested: str | None, override: str | None = None) -> str | None:
    """The attention implementation to build the language model with.

    ``override`` (``model.attn_implementation``) wins. Otherwise ``requested`` (the
    checkpoint's ``llm_config.attn_implementation``) is kept when this machine can serve it;
    flash-attention requests without flash-attn (or without CUDA) become ``sdpa``.
    """
    if override:
        return override
    if not requested or not requested.startswith("flash_attention"):
        return requested or None
    import torch
    from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

    available = {
        "flash_attention_2": is_flash_attn_2_available,
        "flash_attention_3": is_flash_attn_3_available,
    }.get(requested)
    if available is not None and available() and torch.cuda.is_available():
        return requested
    return "sdpa"


def _as_int(value: Any, key: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"{key}={value!r}: only square sizes are supported")
        value = value[0]
    return int(value)


def _build_vision_config(
    vision_config: dict[str, Any] | Aimv2VisionConfig | None, force_image_size: int | None
) -> Aimv2VisionConfig:
    if isinstance(vision_config, Aimv2VisionConfig):
        return vision_config
    if vision_config is not None and not isinstance(vision_config, dict):
        raise ValueError(
            f"vision_config must be a dict or Aimv2VisionConfig, got {type(vision_config).__name__}"
        )
    values = {"image_size": force_image_size or 448, "patch_size": 14, "use_head": False}
    values.update(vision_config or {})
    # AIMv2/SAIL-ViT configs call the MLP/projection bias flag use_bias; transformers mlp_bias.
    if "use_bias" in values:
        values.setdefault("mlp_bias", values.pop("use_bias"))
    # Keys of other AIMv2/SAIL-ViT writers that transformers' config does not take.
    for foreign in ("model_type", "transformers_version", "architectures", "auto_map"):
        values.pop(foreign, None)
    return Aimv2VisionConfig(**values)


def _build_llm_config(llm_config: dict[str, Any] | PretrainedConfig | None) -> PretrainedConfig:
    if isinstance(llm_config, PretrainedConfig):
        arch = (llm_config.architectures or [None])[0]
        _check_llm_architecture(arch)
        return llm_config
    if llm_config is not None and not isinstance(llm_config, dict):
        raise ValueError(f"llm_config must be a dict, got {type(llm_config).__name__}")
    values = dict(llm_config or {"architectures": [DEFAULT_LLM_ARCHITECTURE]})
    architectures = values.get("architectures") or [None]
    arch = architectures[0]
    _check_llm_architecture(arch)
    values.pop("model_type", None)
    values.pop("transformers_version", None)
    values["architectures"] = [arch]
    return LLM_CONFIG_CLASSES[arch](**values)


def _check_llm_architecture(arch: Any) -> None:
    if arch not in LLM_CONFIG_CLASSES:
        raise ValueError(
            f"llm_config.architectures[0]={arch!r} is not a supported language model; "
            f"allowed: {sorted(LLM_CONFIG_CLASSES)}"
        )
