"""SAILVLModel: SAIL-ViT vision tower -> 2x2 pixel shuffle -> ``mlp1`` adapter -> Qwen3 or
Qwen3-MoE language model, as a transformers ``PreTrainedModel`` with ``generate``.

Projected image embeddings (all tiles of all images, in order of appearance) replace the
``<IMG_CONTEXT>`` positions of ``input_ids``; the counts must match exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    GenerationMixin,
    PreTrainedModel,
    Qwen3ForCausalLM,
    Qwen3MoeForCausalLM,
)
from transformers import initialization as init

from policy.config import SAILVLConfig
from policy.vision import Block, Preprocessor, SAILViT

LLM_CLASSES: dict[str, type[PreTrainedModel]] = {
    "Qwen3ForCausalLM": Qwen3ForCausalLM,
    "Qwen3MoeForCausalLM": Qwen3MoeForCausalLM,
}


def pixel_shuffle(x: torch.Tensor, scale_factor: float = 0.5) -> torch.Tensor:
    """InternVL ``ps_version`` v2 pixel shuffle of (n, h, w, c) features to
    (n, h*s, w*s, c/(s*s)); with s = 0.5 each output position holds a 2x2 patch block.

    >>> pixel_shuffle(torch.zeros(1, 4, 4, 8)).shape
    torch.Size([1, 2, 2, 32])
    """
    n, w, h, c = x.size()
    x = x.reshape(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(
        n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor))
    )
    return x.permute(0, 2, 1, 3).contiguous()


def count_image_placeholders(input_ids: torch.Tensor, img_context_token_id: int) -> int:
    """How many ``<IMG_CONTEXT>`` tokens ``input_ids`` holds."""
    return int((input_ids == img_context_token_id).sum().item())


class SAILVLModel(PreTrainedModel, GenerationMixin):
    """SAIL-VL2 vision-language model in the public parameter layout: ``vision_model.*``,
    ``mlp1.{0,1,3}.*``, ``language_model.model.*`` and ``language_model.lm_head.weight``."""

    config_class = SAILVLConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Block", "Qwen3DecoderLayer", "Qwen3MoeDecoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False

    def __init__(self, config: SAILVLConfig) -> None:
        super().__init__(config)
        vision = config.vision_config
        llm = config.llm_config
        self.vision_model = SAILViT(vision)
        scale = round(1 / config.downsample_ratio)
        adapter_in = vision.hidden_size * scale * scale
        self.mlp1 = nn.Sequential(
            nn.LayerNorm(adapter_in),
            nn.Linear(adapter_in, llm.hidden_size),
            nn.GELU(),
            nn.Linear(llm.hidden_size, llm.hidden_size),
        )
        self.language_model = LLM_CLASSES[config.llm_architecture](llm)
        self.post_init()

    # -- weights --------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, Preprocessor):
            init.normal_(module.pos_embed, mean=0.0, std=0.02)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.language_model.get_decoder()

    @property
    def num_image_token(self) -> int:
        return self.config.num_image_token

    # -- vision ---------------------------------------------------------------------------
    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(tiles, 3, S, S) pixels -> (tiles, num_image_token, llm hidden) embeddings."""
        dtype = self.vision_model.preprocessor.patchifier.proj.weight.dtype
        feats = self.vision_model(pixel_values.to(dtype), select_layer=self.config.select_layer)
        n, patches, channels = feats.shape
        side = int(patches**0.5)
        feats = feats.reshape(n, side, side, channels)
        feats = pixel_shuffle(feats, scale_factor=self.config.downsample_ratio)
        feats = feats.reshape(n, -1, feats.shape[-1])
        return self.mlp1(feats)

    def embed_inputs(
        self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None, *, decoding: bool = False
    ) -> torch.Tensor:
        """Token embeddings with image embeddings scattered into the ``<IMG_CONTEXT>`` slots.

        Raises ValueError naming both counts when placeholders and image embeddings differ.
        """
        embeds = self.get_input_embeddings()(input_ids)
        token_id = self.config.img_context_token_id
        if pixel_values is None:
            if token_id is not None and not decoding:
                found = count_image_placeholders(input_ids, token_id)
                if found:
                    raise ValueError(
                        f"input_ids hold {found} <IMG_CONTEXT> placeholder tokens but no "
                        "pixel_values were given (0 image embeddings); pass the images' tiles"
                    )
            return embeds
        if token_id is None:
            raise ValueError(
                "config.img_context_token_id is not set: load the model with "
                "policy.checkpoint.load_checkpoint (it reads the id from the tokenizer)"
            )
        vit_embeds = self.extract_feature(pixel_values)
        mask = input_ids == token_id
        found = int(mask.sum().item())
        expected = vit_embeds.shape[0] * vit_embeds.shape[1]
        if found != expected:
            raise ValueError(
                f"image placeholder mismatch: input_ids hold {found} <IMG_CONTEXT> tokens but "
                f"pixel_values give {expected} image embeddings ({vit_embeds.shape[0]} tiles x "
                f"{vit_embeds.shape[1]} tokens per tile); build prompts with policy.processor"
            )
        vit_embeds = vit_embeds.reshape(-1, vit_embeds.shape[-1]).to(embeds.dtype)
        return embeds.masked_scatter(mask.unsqueeze(-1), vit_embeds)

    # -- forward / generate ---------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ):
        """Returns the language model's output: ``.logits``; ``.loss`` with labels; for MoE,
        ``.aux_loss`` (router load-balancing loss) when ``output_router_logits=True``."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids (or inputs_embeds)")
            decoding = past_key_values is not None and past_key_values.get_seq_length() > 0
            inputs_embeds = self.embed_inputs(input_ids, pixel_values, decoding=decoding)
        if not self.config.is_moe:
            kwargs.pop("output_router_logits", None)
        return self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            labels=labels,
            use_cache=use_cache,
            past_key_values=past_key_values,
            **kwargs,
        )

    def prepare_inputs_for_generation(
        self, input_ids, past_key_values=None, pixel_values=None, is_first_iteration=False, **kwargs
    ):
        model_inputs = super().prepare_inputs_for_generation(
            input_ids,
            past_key_values=past_key_values,
            is_first_iteration=is_first_iteration,
            **kwargs,
        )
        # Images enter only with the prompt; later steps read them from the KV cache.
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs


def register_auto_classes() -> None:
    """Register the "sailvl" model type with transformers' Auto classes (idempotent)."""
    for auto, args in (
        (AutoConfig, ("sailvl", SAILVLConfig)),
        (AutoModel, (SAILVLConfig, SAILVLModel)),
        (AutoModelForCausalLM, (SAILVLConfig, SAILVLModel)),
        (AutoModelForImageTextToText, (SAILVLConfig, SAILVLModel)),
    ):
        try:
            auto.register(*args, exist_ok=True)
        except ValueError as err:  # an Auto class that refuses this pairing: not fatal
            if "already" not in str(err):
                raise


register_auto_classes()

__all__ = ["Block", "SAILVLModel", "count_image_placeholders", "pixel_shuffle"]
