"""Images and prompts into model inputs, the InternVL / SAIL-VL2 way, without torchvision.

- Dynamic tiling: the grid (i x j tiles, ``min_dynamic_patch <= i*j <= max_dynamic_patch``)
  whose aspect ratio is closest to the image's; bicubic resize to (S*i, S*j), row-major crop
  into S x S tiles, plus an S x S thumbnail of the whole image when there is more than one
  tile and ``use_thumbnail``. ImageNet mean/std normalisation.
- Prompts: the checkpoint's own chat template (``render_chat``; the built-in ChatML only when
  the tokenizer carries none); thinking mode appends ``THINK_INSTRUCTION`` to the user text; each
  ``<image>`` marker becomes ``<img>`` + ``<IMG_CONTEXT>`` x (num_image_token x tiles) +
  ``</img>``; without markers one ``<image>\\n`` per image is prepended.

``SAILVLProcessor.process(...)`` returns ``ProcessedPrompt`` (input_ids, pixel_values,
tiles_per_image) ready for ``SAILVLModel.forward``/``generate``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from policy.tokenizer import CHAT_TEMPLATE
from policy.vocab import IMG_CONTEXT, IMG_END, IMG_START, Mode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_MARKER = "<image>"
# The SAIL-VL2 thinking instruction, verbatim (see docs/model.md).
THINK_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide "
    "the final answer. The reasoning process MUST BE enclosed within <think> </think> tags. "
    "The final answer MUST BE put in \\boxed{}."
)
# Joins question and instruction: nothing, as in the SAIL-VL2-Thinking model cards' quick
# start (`"describe the image" + cot_prompt`). See docs/model.md.
THINK_SEPARATOR = ""
ImageInput = Image.Image | str | os.PathLike


@dataclass(frozen=True)
class TilingSettings:
    """How images become tiles; read from a SAILVLConfig with ``from_config``."""

    image_size: int = 448
    min_num: int = 1
    max_num: int = 12
    use_thumbnail: bool = True
    dynamic: bool = True

    @classmethod
    def from_config(cls, config: Any) -> TilingSettings:
        return cls(
            image_size=config.force_image_size,
            min_num=config.min_dynamic_patch,
            max_num=config.max_dynamic_patch,
            use_thumbnail=config.use_thumbnail,
            dynamic=config.dynamic_image_size,
        )


@dataclass(frozen=True)
class ProcessedPrompt:
    """One prompt ready for the model: ``pixel_values`` is (sum(tiles_per_image), 3, S, S)
    or None for a text-only prompt."""

    input_ids: list[int]
    pixel_values: torch.Tensor | None
    tiles_per_image: tuple[int, ...]
    text: str


# -- tiling -------------------------------------------------------------------------------
def target_ratios(min_num: int, max_num: int) -> list[tuple[int, int]]:
    """Candidate (columns, rows) grids, ordered by tile count (InternVL's order)."""
    ratios = {
        (i, j)
        for n in range(min_num, max_num + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    }
    return sorted(ratios, key=lambda r: r[0] * r[1])


def closest_grid(width: int, height: int, settings: TilingSettings) -> tuple[int, int]:
    """The (columns, rows) grid for an image of ``width`` x ``height`` pixels.

    >>> closest_grid(896, 448, TilingSettings())
    (2, 1)
    >>> closest_grid(100, 100, TilingSettings())
    (1, 1)
    """
    if not settings.dynamic:
        return (1, 1)
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    area = width * height
    for cols, rows in target_ratios(settings.min_num, settings.max_num):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * settings.image_size**2 * cols * rows:
            # Same shape match: a large image prefers the larger grid.
            best = (cols, rows)
    return best


def num_tiles(width: int, height: int, settings: TilingSettings) -> int:
    """Tiles an image of this size becomes, thumbnail included."""
    cols, rows = closest_grid(width, height, settings)
    blocks = cols * rows
    return blocks + 1 if settings.use_thumbnail and blocks != 1 else blocks


def tile_image(image: Image.Image, settings: TilingSettings) -> list[Image.Image]:
    """Split ``image`` into S x S tiles (row-major), thumbnail last when there are several."""
    size = settings.image_size
    cols, rows = closest_grid(*image.size, settings)
    resized = image.resize((size * cols, size * rows), resample=Image.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * size, r * size, (c + 1) * size, (r + 1) * size))
        for r in range(rows)
        for c in range(cols)
    ]
    if settings.use_thumbnail and len(tiles) != 1:
        tiles.append(image.resize((size, size), resample=Image.Resampling.BICUBIC))
    return tiles


def normalize_tile(tile: Image.Image, size: int) -> torch.Tensor:
    """(3, size, size) float32 tensor, ImageNet-normalised."""
    if tile.size != (size, size):
        tile = tile.resize((size, size), resample=Image.Resampling.BICUBIC)
    array = np.asarray(tile, dtype=np.float32) / 255.0
    array = (array - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(
        IMAGENET_STD, dtype=np.float32
    )
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def load_image(image: ImageInput) -> Image.Image:
    """An RGB PIL image from a PIL image or a path (FileNotFoundError names the path)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    path = os.fspath(image)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    with Image.open(path) as opened:
        return opened.convert("RGB")


def image_to_pixel_values(image: ImageInput, settings: TilingSettings) -> torch.Tensor:
    """(tiles, 3, S, S) pixel values of one image."""
    tiles = tile_image(load_image(image), settings)
    return torch.stack([normalize_tile(t, settings.image_size) for t in tiles])


# -- text ---------------------------------------------------------------------------------
def apply_mode(question: str, mode: Mode) -> str:
    """The user text for ``mode``: thinking appends the SAIL-VL2 instruction."""
    if mode == "think":
        return question + THINK_SEPARATOR + THINK_INSTRUCTION
    if mode == "direct":
        return question
    raise ValueError(f"mode={mode!r} is not one of 'think', 'direct'")


def add_image_markers(text: str, num_images: int) -> str:
    """Prepend one ``<image>\\n`` per image when the text has no markers; else check counts."""
    found = text.count(IMAGE_MARKER)
    if found == 0:
        return f"{IMAGE_MARKER}\n" * num_images + text
    if found != num_images:
        raise ValueError(
            f"prompt has {found} {IMAGE_MARKER} markers but {num_images} images were given"
        )
    return text


def expand_image_markers(text: str, tiles_per_image: Sequence[int], num_image_token: int) -> str:
    """Replace the k-th ``<image>`` with ``<img>`` + ``<IMG_CONTEXT>`` x (num_image_token x
    tiles_per_image[k]) + ``</img>``.

    >>> expand_image_markers("a <image> b", [1], 2)
    'a <img><IMG_CONTEXT><IMG_CONTEXT></img> b'
    """
    pieces = text.split(IMAGE_MARKER)
    if len(pieces) - 1 != len(tiles_per_image):
        raise ValueError(
            f"text has {len(pieces) - 1} {IMAGE_MARKER} markers but "
            f"{len(tiles_per_image)} images were given"
        )
    out = [pieces[0]]
    for tiles, rest in zip(tiles_per_image, pieces[1:]):
        out.append(IMG_START + IMG_CONTEXT * (num_image_token * tiles) + IMG_END + rest)
    return "".join(out)


def build_chat_text(
    messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True
) -> str:
    """ChatML text of ``messages`` (string contents), ending with the assistant header."""
    parts = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            raise ValueError(f"message content must be a string here, got {type(content).__name__}")
        parts.append(f"<|im_start|>{message['role']}\n{content}<|im_end|>\n")
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def chat_template_source(tokenizer: Any) -> str:
    """ "checkpoint" when ``tokenizer`` carries a chat template of its own (from
    ``tokenizer_config.json``, ``chat_template.jinja`` or ``chat_template.json``), "builtin"
    when prompts fall back to the built-in ChatML (no template, or the tiny tokenizer's)."""
    template = getattr(tokenizer, "chat_template", None)
    return "checkpoint" if template and template != CHAT_TEMPLATE else "builtin"


def render_chat(
    tokenizer: Any, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True
) -> str:
    """The one function that turns messages into prompt text, for SFT, RL, eval, sampling
    and the vLLM side alike: the tokenizer's chat template (a real checkpoint's own framing,
    e.g. a default system turn), else the built-in ChatML of ``build_chat_text``."""
    if not getattr(tokenizer, "chat_template", None):
        return build_chat_text(messages, add_generation_prompt=add_generation_prompt)
    text = tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):
        raise TypeError(f"the tokenizer's chat template rendered {type(text).__name__}, not text")
    return text


class SAILVLProcessor:
    """Turns (prompt or messages, images, mode) into ``ProcessedPrompt``."""

    def __init__(self, tokenizer: Any, config: Any) -> None:
        self.tokenizer = tokenizer
        self.settings = TilingSettings.from_config(config)
        self.num_image_token = config.num_image_token
        self.img_context_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
        self.chat_template = chat_template_source(tokenizer)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> SAILVLProcessor:
        from policy.checkpoint import load_config, load_tokenizer

        return cls(load_tokenizer(path), load_config(path))

    def chat_text(
        self, prompt: str | Sequence[dict[str, Any]], num_images: int, mode: Mode = "think"
    ) -> str:
        """The rendered prompt (``render_chat``) with one ``<image>`` marker per image still
        unexpanded. ``prompt`` is the user's question, or a list of {role, content}
        messages; the mode instruction goes on the last user message and image markers may
        sit in any message (without any, they go before the first user text)."""
        messages = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        )
        messages = [dict(m) for m in messages]
        user_turns = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not user_turns:
            raise ValueError("messages need at least one message with role 'user'")
        last = user_turns[-1]
        messages[last]["content"] = apply_mode(messages[last]["content"], mode)
        total_markers = sum(m["content"].count(IMAGE_MARKER) for m in messages)
        if total_markers == 0 and num_images:
            first = user_turns[0]
            messages[first]["content"] = add_image_markers(messages[first]["content"], num_images)
        return render_chat(self.tokenizer, messages)

    def prompt_text(
        self,
        prompt: str | Sequence[dict[str, Any]],
        tiles_per_image: Sequence[int],
        mode: Mode = "think",
    ) -> str:
        """The full prompt text (``chat_text``) with image markers expanded."""
        text = self.chat_text(prompt, len(tiles_per_image), mode)
        return expand_image_markers(text, tiles_per_image, self.num_image_token)

    def image_token_counts(
        self, ids: Sequence[int], tiles_per_image: Sequence[int]
    ) -> tuple[int, int]:
        """(``<IMG_CONTEXT>`` tokens in ``ids``, how many the images' tiles need)."""
        found = sum(1 for t in ids if t == self.img_context_token_id)
        return found, sum(tiles_per_image) * self.num_image_token

    def text_ids(self, text: str, tiles_per_image: Sequence[int]) -> list[int]:
        """Token ids of an expanded prompt text, checked against its images' tile counts."""
        input_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        found, expected = self.image_token_counts(input_ids, tiles_per_image)
        if found != expected:
            raise ValueError(
                f"prompt tokenises to {found} <IMG_CONTEXT> tokens but its images need "
                f"{expected}; remove <IMG_CONTEXT>/<img> from the prompt text"
            )
        return list(input_ids)

    def process(
        self,
        prompt: str | Sequence[dict[str, Any]],
        images: Sequence[ImageInput] = (),
        mode: Mode = "think",
    ) -> ProcessedPrompt:
        """input_ids + pixel_values + per-image tile counts for one prompt."""
        pixels = [image_to_pixel_values(image, self.settings) for image in images]
        tiles = tuple(p.shape[0] for p in pixels)
        text = self.prompt_text(prompt, tiles, mode)
        input_ids = self.text_ids(text, tiles)
        pixel_values = torch.cat(pixels) if pixels else None
        return ProcessedPrompt(input_ids, pixel_values, tiles, text)

    __call__ = process
