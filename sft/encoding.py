"""SFT examples into training sequences with loss masks.

A sequence is the prompt exactly as the policy processor builds it for RL and vLLM (the
checkpoint's own chat template through ``policy.processor.render_chat``, e.g. its default
system turn; the built-in ChatML only for tokenizers without one; thinking instruction
appended in ``think`` mode only, ``<img><IMG_CONTEXT>...</img>`` per image) followed by the
response tokens and ``<|im_end|>``. Prompt ids and response ids are
tokenised separately, as in rollout (prompt ids + generated ids), so SFT trains exactly the
token boundaries the RL stage samples.

Loss mask (1 = the token is a training target):
- system / user / image tokens and the assistant header: 0;
- ``think`` samples: the whole response, ``<think> ... </think>`` and answer, and the closing
  ``<|im_end|>``: 1;
- ``direct`` samples: the answer and ``<|im_end|>``: 1; a ``<think> ... </think>`` block inside
  a direct response (e.g. an empty Qwen3-style one) is context only: 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policy.vocab import IM_END, MODES, THINK_END, THINK_START
from sft.packing import SFTSample


def _token_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == getattr(tokenizer, "unk_token_id", None):
        raise KeyError(f"tokenizer has no token {token!r}; SFT sequences need it")
    return int(token_id)


def response_loss_mask(
    response_ids: Sequence[int], mode: str, think_start: int, think_end: int
) -> list[int]:
    """Loss mask of the response tokens (``<|im_end|>`` included) for ``mode``.

    >>> response_loss_mask([7, 1, 8, 2, 9, 3], "direct", think_start=1, think_end=2)
    [1, 0, 0, 0, 1, 1]
    >>> response_loss_mask([1, 8, 2, 9, 3], "think", think_start=1, think_end=2)
    [1, 1, 1, 1, 1]
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    mask = [1] * len(response_ids)
    if mode == "think":
        return mask
    inside = False
    for i, token in enumerate(response_ids):
        if token == think_start:
            inside = True
        if inside:
            mask[i] = 0
        if token == think_end:
            inside = False
    return mask


def encode_sft(
    processor: Any,
    prompt: str | Sequence[dict[str, Any]],
    response: str,
    mode: str,
    images: Sequence[Any] = (),
) -> SFTSample:
    """Tokenise one (prompt, images, response, mode) example into an ``SFTSample``.

    ``processor`` is a ``policy.processor.SAILVLProcessor``; ``prompt`` is the user text or a
    list of {role, content} messages (system and earlier turns are context, never trained).
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    if not response:
        raise ValueError("an SFT example needs a non-empty response")
    tokenizer = processor.tokenizer
    processed = processor.process(prompt, images, mode=mode)
    prompt_ids = list(processed.input_ids)
    response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    response_ids.append(_token_id(tokenizer, IM_END))
    mask = response_loss_mask(
        response_ids, mode, _token_id(tokenizer, THINK_START), _token_id(tokenizer, THINK_END)
    )
    return SFTSample(
        input_ids=tuple(prompt_ids + response_ids),
        loss_mask=tuple([0] * len(prompt_ids) + mask),
        pixel_values=processed.pixel_values,
        mode=mode,
    )


def encode_example(processor: Any, example: Any) -> SFTSample:
    """``encode_sft`` of a ``policy.data.Example`` (its own mode picks prompt and mask)."""
    if not example.response:
        raise ValueError(f"example {example.question!r:.60} has no response to train on")
    return encode_sft(processor, example.question, example.response, example.mode, example.images)


def encode_batch(
    processor: Any, examples: Sequence[Any], max_seq_len: int
) -> tuple[list[SFTSample], int]:
    """Samples of ``examples`` no longer than ``max_seq_len`` tokens, and how many were skipped."""
    samples = [encode_example(processor, e) for e in examples]
    kept = [s for s in samples if len(s) <= max_seq_len]
    return kept, len(samples) - len(kept)
