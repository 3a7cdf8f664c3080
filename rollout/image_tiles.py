"""Image facts for the vLLM side, all delegated to ``policy.processor`` so that both sides
tile an image into the same tiles and the same number of placeholder tokens."""

from __future__ import annotations

from typing import Any

import torch

from policy.processor import TilingSettings, image_to_pixel_values, target_ratios
from policy.processor import num_tiles as _num_tiles
from policy.vocab import IMG_CONTEXT, IMG_END, IMG_START


def tile_image(config: Any, image: Any) -> torch.Tensor:
    """(tiles, 3, S, S) normalised pixel values of one image (PIL image or path)."""
    return image_to_pixel_values(image, TilingSettings.from_config(config))


def num_tiles(config: Any, width: int, height: int) -> int:
    """Tiles (thumbnail included) an image of this size becomes."""
    return _num_tiles(width, height, TilingSettings.from_config(config))


def _largest_grid(config: Any) -> tuple[int, int]:
    settings = TilingSettings.from_config(config)
    if not settings.dynamic:
        return (1, 1)
    return max(target_ratios(settings.min_num, settings.max_num), key=lambda r: r[0] * r[1])


def size_with_most_tiles(config: Any) -> tuple[int, int]:
    """(width, height) of an image that yields the most tiles."""
    cols, rows = _largest_grid(config)
    size = config.force_image_size
    return size * cols, size * rows


def max_tiles(config: Any) -> int:
    """The most tiles one image can become."""
    return num_tiles(config, *size_with_most_tiles(config))


def image_token_ids(tokenizer: Any, source: str = "the tokenizer") -> dict[str, int]:
    """Ids of ``<img>``, ``</img>`` and ``<IMG_CONTEXT>``, read from the tokenizer."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in (IMG_START, IMG_END, IMG_CONTEXT) if t not in vocab]
    if missing:
        raise ValueError(
            f"tokenizer of {source} lacks the image tokens {missing}: a SAIL-VL2 checkpoint's "
            "tokenizer must define <img>, </img> and <IMG_CONTEXT>"
        )
    return {t: vocab[t] for t in (IMG_START, IMG_END, IMG_CONTEXT)}
