"""A reward any freshly initialised model can learn in a few steps, for smoke tests of the
RL loop (``configs/tiny-rl.yaml``): the share of digit characters in the completion.

It says nothing about reasoning; it exists so that "reward rises" is checkable in minutes
on a CPU with a model that knows nothing yet.

    >>> digit_fraction("a1b2", "", {})
    0.5
    >>> digit_fraction("", "", {})
    0.0
"""

from __future__ import annotations


def digit_fraction(completion: str, answer: str, metadata: dict) -> float:
    text = completion.strip()
    if not text:
        return 0.0
    return sum(ch.isdigit() for ch in text) / len(text)
