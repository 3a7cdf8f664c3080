"""A tiny SAIL-VL2 model, tokenizer and processor for the SFT tests (112 px tiles: 16 image
tokens per tile, so multimodal sequences stay short)."""

from __future__ import annotations

import copy
from functools import lru_cache

import torch

TILE = 112


@lru_cache(maxsize=1)
def tiny_tokenizer():
    from policy.tokenizer import train_tokenizer

    return train_tokenizer()


def tiny_model(seed: int = 0, tile: int = TILE):
    """(model, processor) of the ``tiny`` preset with ``tile`` px tiles, randomly initialised."""
    from policy.config import SAILVLConfig
    from policy.modeling import SAILVLModel
    from policy.presets import PRESETS
    from policy.processor import SAILVLProcessor
    from policy.tokenizer import IMG_CONTEXT, special_token_ids

    tokenizer = tiny_tokenizer()
    spec = copy.deepcopy(PRESETS["tiny"])
    spec["vision_config"]["image_size"] = tile
    spec["llm_config"]["vocab_size"] = len(tokenizer)
    config = SAILVLConfig(
        vision_config=spec["vision_config"],
        llm_config=spec["llm_config"],
        force_image_size=tile,
        max_dynamic_patch=spec["max_dynamic_patch"],
    )
    config.img_context_token_id = special_token_ids(tokenizer)[IMG_CONTEXT]
    torch.manual_seed(seed)
    return SAILVLModel(config), SAILVLProcessor(tokenizer, config)
