"""Requests into vLLM inputs: prompt token ids built by ``policy.processor`` (so both sides
see identical ids; the request's own ``prompt_token_ids`` when the caller tokenised it
already, as the RL driver does) plus the PIL images for vLLM's multimodal pipeline. Bad input becomes a
``PromptFailure`` naming the prompt (and file) instead of failing the whole batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from policy.processor import SAILVLProcessor, load_image, num_tiles
from rollout.types import PromptFailure, RolloutRequest


@dataclass(frozen=True)
class PreparedPrompt:
    """One request ready for vLLM."""

    request: RolloutRequest
    prompt_token_ids: tuple[int, ...]
    images: tuple[Image.Image, ...]

    def vllm_input(self) -> dict[str, Any]:
        prompt: dict[str, Any] = {"prompt_token_ids": list(self.prompt_token_ids)}
        if self.images:
            prompt["multi_modal_data"] = {"image": list(self.images)}
        return prompt


def check_image_tokens(processor: SAILVLProcessor, ids: list[int], tiles: tuple[int, ...]) -> None:
    """ValueError unless ``ids`` hold as many ``<IMG_CONTEXT>`` tokens as the images need."""
    found, expected = processor.image_token_counts(ids, tiles)
    if found != expected:
        raise ValueError(
            f"the given prompt token ids hold {found} <IMG_CONTEXT> tokens but its images "
            f"need {expected}"
        )


class InvalidPromptError(ValueError):
    """A request that cannot be turned into model input."""


def prepare(
    request: RolloutRequest, processor: SAILVLProcessor, max_model_len: int
) -> PreparedPrompt:
    """Token ids and images of one request; raises InvalidPromptError naming the prompt."""
    pid = request.prompt_id
    if isinstance(request.prompt, str):
        if not request.prompt.strip():
            raise InvalidPromptError(f"prompt {pid!r}: the prompt text is empty")
    elif not any(str(m.get("content", "")).strip() for m in request.prompt):
        raise InvalidPromptError(f"prompt {pid!r}: every message is empty")
    images = tuple(_load(pid, image) for image in request.images)
    tiles = tuple(num_tiles(*image.size, processor.settings) for image in images)
    try:
        if request.prompt_token_ids is None:
            text = processor.prompt_text(request.prompt, tiles, request.mode)
            ids = processor.text_ids(text, tiles)
        else:  # tokenised once by the caller: only check the image placeholders
            ids = list(request.prompt_token_ids)
            check_image_tokens(processor, ids, tiles)
    except ValueError as err:
        raise InvalidPromptError(f"prompt {pid!r}: {err}") from err
    if len(ids) >= max_model_len:
        raise InvalidPromptError(
            f"prompt {pid!r}: {len(ids)} tokens (images included) do not fit the context of "
            f"{max_model_len} tokens; shorten it, use fewer/smaller images or raise max_model_len"
        )
    return PreparedPrompt(request, tuple(ids), images)


def prepare_all(
    requests: list[RolloutRequest], processor: SAILVLProcessor, max_model_len: int
) -> tuple[list[tuple[int, PreparedPrompt]], list[PromptFailure]]:
    """(index, prepared) for the valid requests and a failure for each invalid one."""
    ready, failures = [], []
    for index, request in enumerate(requests):
        try:
            ready.append((index, prepare(request, processor, max_model_len)))
        except (InvalidPromptError, FileNotFoundError) as err:
            failures.append(PromptFailure(request.prompt_id, str(err)))
    return ready, failures


def _load(prompt_id: str, image: Any) -> Image.Image:
    try:
        return load_image(image)
    except FileNotFoundError as err:
        raise InvalidPromptError(f"prompt {prompt_id!r}: {err}") from err
    except (UnidentifiedImageError, OSError) as err:
        raise InvalidPromptError(
            f"prompt {prompt_id!r}: cannot read image {image!s}: {err}"
        ) from err
