"""An example user reward (see docs/rewards.md): rewards concise thoughts.

Register it in the rewards config by dotted path::

    custom:
      concise: docs.examples.my_reward:concise_reward
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def concise_reward(completion: str, answer: str, metadata: Mapping[str, Any]) -> dict[str, float]:
    """1.0 when the thought is at most ``metadata['max_thought_words']`` words (default 200),
    decreasing linearly to 0.0 at twice that; the word count is logged too.

    >>> concise_reward("<think>two words</think>\\\\boxed{4}", "4", {})
    {'score': 1.0, 'thought_words': 2.0}
    >>> concise_reward("<think>" + "w " * 300 + "</think>\\\\boxed{4}", "4", {})["score"]
    0.5
    """
    limit = int(metadata.get("max_thought_words", 200))
    start, end = completion.find("<think>"), completion.find("</think>")
    thought = completion[start + len("<think>") : end] if 0 <= start < end else ""
    words = len(thought.split())
    score = 1.0 if words <= limit else max(0.0, 2.0 - words / limit)
    return {"score": score, "thought_words": float(words)}
