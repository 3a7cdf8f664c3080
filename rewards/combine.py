"""Combining named reward values into one scalar (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rewards.config import RewardSetConfig


def linear(weights: Mapping[str, float], values: Mapping[str, float]) -> float:
    """Weighted sum; the weights sum to 1 (the report's mixed-reward stage).

    >>> linear({"answer": 0.9, "format": 0.1}, {"answer": 1.0, "format": 0.0})
    0.9
    """
    return math.fsum(w * values[name] for name, w in weights.items())


def gated(alpha: float, gate_values: list[float], format_value: float) -> float:
    """``alpha * prod(gate_values) + (1 - alpha) * format_value`` (SAIL-RL's gated form: a
    wrong answer or unsound thought earns only the format share).

    >>> gated(0.9, [1.0, 1.0], 1.0), gated(0.9, [1.0, 0.0], 1.0)
    (1.0, 0.1)
    """
    return round(alpha * math.prod(gate_values) + (1.0 - alpha) * format_value, 12)


def combine(reward_set: RewardSetConfig, values: Mapping[str, float]) -> float:
    """The reward of one sample under ``reward_set`` from its named reward values.

    >>> combine(RewardSetConfig(combine="gated", alpha=0.9, gate=["answer"]), {"answer": 1.0, "format": 0.0})
    0.9
    """
    if reward_set.combine == "linear":
        return round(linear(reward_set.weights, values), 12)
    return gated(
        reward_set.alpha, [values[name] for name in reward_set.gate], values[reward_set.format]
    )
