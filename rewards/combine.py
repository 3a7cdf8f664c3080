"""Combining named reward values into one scalar (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rewards.config import RewardSetConfig


def linear(weights: Mapping[str, float], values: Mapping[str, float]) -> float:
    """Weighted sum; the weights sum to 1 (the report's mixed-reward stage). A reward missing
    from ``values`` is not applicable to the sample and adds nothing (TRL's ``nansum``).

    >>> linear({"answer": 0.9, "format": 0.1}, {"answer": 1.0, "format": 0.0})
    0.9
    >>> linear({"answer": 0.9, "format": 0.1}, {"format": 1.0})
    0.1
    """
    return math.fsum(w * values[name] for name, w in weights.items() if name in values)


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
    # Not-applicable rewards (missing from values) drop out of the gate; a gate with none
    # applicable opens nothing.
    gate = [values[name] for name in reward_set.gate if name in values]
    return gated(reward_set.alpha, gate or [0.0], values.get(reward_set.format, 0.0))
