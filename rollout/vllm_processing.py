"""vLLM multimodal processing for SAIL-VL2: image tiling and placeholder expansion.

Images are tiled by ``policy.processor`` itself (so the tiles and the tile counts are those the
learner sees); each image's placeholder is ``<img>`` + ``<IMG_CONTEXT>`` x (tiles x
num_image_token) + ``</img>`` with the token ids read from the tokenizer.

A prompt may reach vLLM in two forms, and both give the same ids:
- already expanded by ``policy.processor`` (what ``RolloutEngine`` sends): each image's
  expanded block is matched as-is and only marked as that image's placeholder;
- raw text with one ``<image>`` marker per image (plain ``vllm.LLM`` use): each marker is
  replaced by the expanded block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import torch
from transformers import BatchFeature
from vllm.config.multimodal import MultiModalDummyOptions
from vllm.inputs import MultiModalDataDict
from vllm.multimodal.inputs import MultiModalFieldConfig, MultiModalKwargsItems
from vllm.multimodal.parse import ImageSize, MultiModalDataItems
from vllm.multimodal.processing import (
    BaseDummyInputsBuilder,
    BaseMultiModalProcessor,
    BaseProcessingInfo,
    PromptReplacement,
    PromptUpdate,
    PromptUpdateDetails,
    cached_encode,
)

from policy.vocab import IMG_CONTEXT, IMG_END, IMG_START
from rollout import image_tiles

IMAGE_MARKER = "<image>"


class SAILVLProcessingInfo(BaseProcessingInfo):
    """Model facts the processor needs: tiling settings and image token ids."""

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        return {"image": None}

    def get_supported_mm_processor_kwargs(self) -> dict[str, set[str]]:
        # No HF processor class exists for SAIL-VL2; tiling is fixed by the config.
        return {"text_kwargs": set(), "images_kwargs": set()}

    def get_hf_processor(self, **kwargs: object):
        raise NotImplementedError(
            "SAIL-VL2 images are tiled by policy.processor, not an HF processor"
        )

    @cached_property
    def token_ids(self) -> dict[str, int]:
        """Ids of ``<img>``, ``</img>`` and ``<IMG_CONTEXT>``; error if the tokenizer lacks one."""
        return image_tiles.image_token_ids(self.get_tokenizer(), source=self.ctx.model_config.model)

    def num_tiles(self, width: int, height: int) -> int:
        return image_tiles.num_tiles(self.get_hf_config(), width, height)

    def image_block(self, tiles: int) -> PromptUpdateDetails:
        """The expanded placeholder of one image with ``tiles`` tiles."""
        ids = self.token_ids
        count = tiles * self.get_hf_config().num_image_token
        full = [ids[IMG_START], *([ids[IMG_CONTEXT]] * count), ids[IMG_END]]
        return PromptUpdateDetails.select_token_id(full, ids[IMG_CONTEXT])

    def max_tiles(self) -> int:
        config = self.get_hf_config()
        return image_tiles.max_tiles(config)

    def get_mm_max_tokens_per_item(
        self, seq_len: int, mm_counts: Mapping[str, int]
    ) -> Mapping[str, int]:
        return {"image": self.max_tiles() * self.get_hf_config().num_image_token}

    def get_image_size_with_most_features(self) -> ImageSize:
        width, height = image_tiles.size_with_most_tiles(self.get_hf_config())
        return ImageSize(width=width, height=height)


class SAILVLDummyInputsBuilder(BaseDummyInputsBuilder[SAILVLProcessingInfo]):
    """Profiling inputs: ``<image>`` markers and images of the size that gives most tiles."""

    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        return IMAGE_MARKER * mm_counts.get("image", 0)

    def get_dummy_mm_data(
        self,
        seq_len: int,
        mm_counts: Mapping[str, int],
        mm_options: MultiModalDummyOptions,
    ) -> MultiModalDataDict:
        size = self.info.get_image_size_with_most_features()
        return {
            "image": self._get_dummy_images(
                width=size.width,
                height=size.height,
                num_images=mm_counts.get("image", 0),
                overrides=mm_options.get("image"),
            )
        }


class SAILVLMultiModalProcessor(BaseMultiModalProcessor[SAILVLProcessingInfo]):
    """Tiles images with policy.processor and marks or expands their placeholders."""

    def _call_hf_processor(
        self, hf_data: Mapping[str, object], hf_kwargs: Mapping[str, object]
    ) -> BatchFeature:
        config = self.info.get_hf_config()
        tiles = [image_tiles.tile_image(config, image) for image in hf_data.get("images", [])]
        data = {
            "pixel_values_flat": torch.cat(tiles) if tiles else torch.empty(0),
            "image_num_patches": torch.tensor([t.shape[0] for t in tiles], dtype=torch.long),
        }
        return BatchFeature(data)

    def _get_mm_fields_config(
        self, hf_inputs: BatchFeature, hf_processor_mm_kwargs: Mapping[str, object]
    ) -> Mapping[str, MultiModalFieldConfig]:
        num_patches = hf_inputs.get("image_num_patches", torch.empty(0))
        return {
            "pixel_values_flat": MultiModalFieldConfig.flat_from_sizes("image", num_patches),
            "image_num_patches": MultiModalFieldConfig.batched("image", keep_on_cpu=True),
        }

    def _get_prompt_updates(
        self,
        mm_items: MultiModalDataItems,
        hf_processor_mm_kwargs: Mapping[str, object],
        out_mm_kwargs: MultiModalKwargsItems,
    ) -> Sequence[PromptUpdate]:
        def block(item_idx: int) -> PromptUpdateDetails:
            tiles = int(out_mm_kwargs["image"][item_idx]["image_num_patches"].data)
            return self.info.image_block(tiles)

        marker = cached_encode(self.info.get_tokenizer(), IMAGE_MARKER, add_special_tokens=False)
        # Alternatives per image, tried in order: an already expanded block (left as is),
        # then a raw ``<image>`` marker (expanded here).
        return [
            PromptReplacement(modality="image", target=lambda i: block(i).full, replacement=block),
            PromptReplacement(modality="image", target=marker, replacement=block),
        ]
