"""The format reward: think tags and a boxed answer where the mode asks for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewards.extract import THINK_CLOSE, THINK_OPEN, has_box

# Image placeholders the policy must never emit (they break the next multimodal forward).
IMAGE_TOKENS: tuple[str, ...] = ("<IMG_CONTEXT>", "<img>", "</img>")


def has_image_token(completion: str, tokens: tuple[str, ...] = IMAGE_TOKENS) -> bool:
    """Whether the completion contains an image placeholder token.

    >>> has_image_token("look <IMG_CONTEXT> here"), has_image_token("no image")
    (True, False)
    """
    return any(t in completion for t in tokens)


def think_format_ok(completion: str) -> bool:
    """Exactly one ``<think>...</think>`` at the very start with non-empty reasoning, then an
    answer holding a boxed result outside the thought.

    >>> think_format_ok("<think>2+2 is 4</think>The answer is \\\\boxed{4}")
    True
    >>> think_format_ok("<think> </think>\\\\boxed{4}")
    False
    >>> think_format_ok("<think>so \\\\boxed{4}</think>4")
    False
    """
    text = completion.lstrip()
    if not text.startswith(THINK_OPEN):
        return False
    if text.count(THINK_OPEN) != 1 or text.count(THINK_CLOSE) != 1:
        return False
    close = text.find(THINK_CLOSE)
    thought = text[len(THINK_OPEN) : close]
    answer = text[close + len(THINK_CLOSE) :]
    return bool(thought.strip()) and has_box(answer)


def direct_format_ok(completion: str) -> bool:
    """No think tags at all and a boxed result.

    >>> direct_format_ok("It is \\\\boxed{4}"), direct_format_ok("<think>x</think>\\\\boxed{4}")
    (True, False)
    """
    if THINK_OPEN in completion or THINK_CLOSE in completion:
        return False
    return has_box(completion)


def format_reward(completion: str, answer: str, metadata: Mapping[str, Any] | None = None) -> float:
    """1.0 when the completion has the shape its mode asks for (``metadata['mode']``,
    ``think`` by default), else 0.0. Image placeholder tokens always give 0.0.

    >>> format_reward("<think>2+2=4</think>\\\\boxed{4}", "4", {"mode": "think"})
    1.0
    >>> format_reward("\\\\boxed{4}", "4", {"mode": "direct"})
    1.0
    >>> format_reward("text first <think>2+2=4</think>\\\\boxed{4}", "4")
    0.0
    """
    if has_image_token(completion):
        return 0.0
    mode = (metadata or {}).get("mode", "think")
    ok = think_format_ok(completion) if mode == "think" else direct_format_ok(completion)
    return float(ok)
