"""SAIL-VL2 as a vLLM model, composed of vLLM's own layers: the AIMv2 encoder (``aimv2.py``,
which already uses the SAIL-ViT parameter names), an InternVL-style pixel shuffle + ``mlp1``
adapter, and vLLM's Qwen3 / Qwen3-MoE language model (picked from
``llm_config.architectures``). Registered as architecture ``SAILVLModel`` by
``rollout.plugin.register``.

Only the vision blocks up to ``select_layer`` are built (so they are the only ones that run),
and ``post_trunk_norm`` exists only when ``select_layer == -1``; checkpoint or sync weights of
the unbuilt parts are dropped by ``rollout.weight_names.keep_for_vllm``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Annotated, Literal

import torch
from torch import nn
from vllm.config import VllmConfig
from vllm.model_executor.models.aimv2 import AIMv2Model
from vllm.model_executor.models.interfaces import (
    MultiModalEmbeddings,
    SupportsMultiModal,
    SupportsPP,
)
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    init_vllm_registered_model,
    maybe_prefix,
)
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.sequence import IntermediateTensors
from vllm.utils.tensor_schema import TensorSchema, TensorShape

from rollout.vllm_processing import (
    IMAGE_MARKER,
    SAILVLDummyInputsBuilder,
    SAILVLMultiModalProcessor,
    SAILVLProcessingInfo,
)
from rollout.weight_names import keep_for_vllm, vision_blocks_used


class SAILVLImagePixelInputs(TensorSchema):
    """Dimensions:
    - bnp: total tiles of all images in the batch
    - h, w: tile size (force_image_size)
    - bn: number of images
    """

    type: Literal["pixel_values"]
    pixel_values_flat: Annotated[torch.Tensor, TensorShape("bnp", 3, "h", "w")]
    num_patches: Annotated[torch.Tensor, TensorShape("bn")]


def pixel_shuffle_v2(x: torch.Tensor, scale_factor: float) -> torch.Tensor:
    """InternVL ``ps_version`` v2 pixel shuffle of (n, w, h, c) features (same op as
    ``policy.modeling.pixel_shuffle``; vLLM's copy lives in a module that needs torchvision)."""
    n, w, h, c = x.size()
    x = x.reshape(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor**2)))
    return x.permute(0, 2, 1, 3).contiguous()


def build_vision_tower(config, quant_config, prefix: str) -> AIMv2Model:
    """vLLM's AIMv2 encoder holding only the blocks ``select_layer`` needs."""
    vision_config = copy.deepcopy(config.vision_config)
    vision_config.num_hidden_layers = vision_blocks_used(config)
    return AIMv2Model(
        vision_config,
        quant_config,
        require_post_norm=config.select_layer == -1,
        prefix=prefix,
    )


@MULTIMODAL_REGISTRY.register_processor(
    SAILVLMultiModalProcessor,
    info=SAILVLProcessingInfo,
    dummy_inputs=SAILVLDummyInputsBuilder,
)
class SAILVLForVLLM(nn.Module, SupportsMultiModal, SupportsPP):
    """vLLM model for the ``SAILVLModel`` architecture (dense and MoE language models)."""

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        if modality.startswith("image"):
            return IMAGE_MARKER
        raise ValueError(f"SAIL-VL2 supports only images, not {modality!r}")

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        quant_config = vllm_config.quant_config
        self.config = config
        self.downsample_ratio = config.downsample_ratio
        self.llm_hidden_size = config.llm_config.hidden_size

        with self._mark_tower_model(vllm_config, "image"):
            self.vision_model = build_vision_tower(
                config, quant_config, maybe_prefix(prefix, "vision_model")
            )
            scale = round(1 / config.downsample_ratio)
            adapter_in = config.vision_config.hidden_size * scale * scale
            # Plain torch layers, as in the HF model: tiny next to the towers.
            self.mlp1 = nn.Sequential(
                nn.LayerNorm(adapter_in),
                nn.Linear(adapter_in, self.llm_hidden_size),
                nn.GELU(),
                nn.Linear(self.llm_hidden_size, self.llm_hidden_size),
            )

        with self._mark_language_model(vllm_config):
            self.language_model = init_vllm_registered_model(
                vllm_config=vllm_config,
                hf_config=config.llm_config,
                prefix=maybe_prefix(prefix, "language_model"),
            )

        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors

    # -- vision ---------------------------------------------------------------------------
    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(tiles, 3, S, S) -> (tiles, num_image_token, llm hidden)."""
        dtype = self.mlp1[1].weight.dtype
        feats = self.vision_model(pixel_values.to(dtype))
        n, patches, channels = feats.shape
        side = int(patches**0.5)
        feats = feats.reshape(n, side, side, channels)
        feats = pixel_shuffle_v2(feats, self.downsample_ratio)
        feats = feats.reshape(n, -1, feats.shape[-1])
        return self.mlp1(feats)

    def _parse_image_input(self, **kwargs: object) -> SAILVLImagePixelInputs | None:
        pixel_values_flat = kwargs.pop("pixel_values_flat", None)
        if pixel_values_flat is None:
            return None
        size = self.config.force_image_size
        return SAILVLImagePixelInputs(
            type="pixel_values",
            pixel_values_flat=pixel_values_flat,
            num_patches=kwargs.pop("image_num_patches"),
            resolve_bindings={"h": size, "w": size},
        )

    def embed_multimodal(self, **kwargs: object) -> MultiModalEmbeddings:
        image_input = self._parse_image_input(**kwargs)
        if image_input is None:
            return []
        embeds = self.extract_feature(image_input["pixel_values_flat"])
        per_tile = embeds.shape[1]
        embeds = embeds.reshape(-1, self.llm_hidden_size)
        sizes = [int(n) * per_tile for n in image_input["num_patches"]]
        return tuple(embeds.split(sizes))

    # -- language model -------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor | IntermediateTensors:
        if intermediate_tensors is not None:
            inputs_embeds = None
        return self.language_model.model(
            input_ids=input_ids,
            positions=positions,
            intermediate_tensors=intermediate_tensors,
            inputs_embeds=inputs_embeds,
        )

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.language_model.compute_logits(hidden_states)

    def after_weight_update(self, loaded_names: set[str]) -> None:
        """Re-derive what the platform built from loaded weights that an update bypasses.

        Under tied embeddings the lm_head shares the embedding's weight, but vLLM's CPU
        backend packs a copy of it for the logits GEMM when the model loads; a reload of
        ``embed_tokens`` leaves that copy stale (seen here: logprobs off by up to 1.75 after
        an update that perturbed the embeddings). Re-tie and re-pack it.
        """
        llm = self.config.llm_config
        if not getattr(llm, "tie_word_embeddings", False):
            return
        if "language_model.model.embed_tokens.weight" not in loaded_names:
            return
        lm = self.language_model
        head = getattr(lm, "lm_head", None)
        if head is None or not hasattr(head, "quant_method"):
            return
        head.weight = lm.model.embed_tokens.weight
        head.quant_method.process_weights_after_loading(head)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Load checkpoint-format (``policy/``-named) weights; the vLLM layers fuse
        q/k/v, gate/up, fc1/fc3 and the MoE experts themselves (see rollout.weight_names)."""
        config = self.config
        kept = ((name, tensor) for name, tensor in weights if keep_for_vllm(name, config))
        return AutoWeightsLoader(self).load_weights(kept)
