"""Scoring one sample: guards, routing to a reward set, calling each reward, combining.

This is what a worker process runs; it never raises for a bad completion or a failing reward:
every sample ends as a :class:`RewardResult` with an outcome.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rewards.combine import combine
from rewards.config import RewardsConfig, RewardSetConfig
from rewards.records import RewardInput, RewardResult
from rewards.registry import RewardFn, load_rewards, reward_paths

ANSWER_FOUND = "answer_found"  # a reward returning this extra as 0.0 marks "no_answer"


def precheck(item: RewardInput, config: RewardsConfig) -> RewardResult | None:
    """The result of a sample that needs no reward function (too long, image placeholder
    token), or None. Cheap, so the runtime runs it before sending anything to a worker."""
    if len(item.completion) > config.runtime.max_completion_chars:
        return RewardResult(0.0, {"too_long": 1.0}, "ok")
    if any(token in item.completion for token in config.banned_tokens):
        return RewardResult(0.0, {"image_token": 1.0}, "ok")
    return None


def route(metadata: Mapping[str, Any], config: RewardsConfig) -> str:
    """Name of the reward set for a sample with ``metadata``.

    >>> from rewards.config import RoutingConfig
    >>> cfg = RewardsConfig(sets={"default": RewardSetConfig(), "ocr": RewardSetConfig()},
    ...                     routing=RoutingConfig(key="data_source", routes={"textvqa": "ocr"}))
    >>> route({"data_source": "textvqa"}, cfg), route({"data_source": "gsm8k"}, cfg)
    ('ocr', 'default')
    """
    value = metadata.get(config.routing.key)
    return (
        config.routing.routes.get(str(value), config.routing.default)
        if value is not None
        else config.routing.default
    )


def split_output(name: str, output: Any) -> tuple[float, dict[str, float]]:
    """A reward's value and its logged components from what it returned (a number, or a dict
    with ``score`` and extras). TypeError/ValueError for anything else."""
    if isinstance(output, Mapping):
        if "score" not in output:
            raise ValueError(
                f"reward {name!r} returned a dict without 'score': keys {sorted(output)}"
            )
        value = _as_float(name, output["score"])
        extras = {
            f"{name}/{k}": _as_float(f"{name}/{k}", v) for k, v in output.items() if k != "score"
        }
        return value, {name: value, **extras}
    value = _as_float(name, output)
    return value, {name: value}


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"reward {name!r} returned {type(value).__name__}, expected a float")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"reward {name!r} returned {value}, expected a finite float")
    return value


class Scorer:
    """Scores samples in the current process with the rewards named by ``config``."""

    def __init__(self, config: RewardsConfig, paths: Mapping[str, str] | None = None):
        self.config = config
        self.rewards: dict[str, RewardFn] = load_rewards(paths or reward_paths(config), config)

    def score(self, item: RewardInput) -> RewardResult:
        early = precheck(item, self.config)
        if early is not None:
            return early
        reward_set = self.config.sets[route(item.metadata, self.config)]
        return self.score_with(reward_set, item)

    def score_with(self, reward_set: RewardSetConfig, item: RewardInput) -> RewardResult:
        metadata = {**item.metadata, "mode": item.mode}
        values: dict[str, float] = {}
        components: dict[str, float] = {}
        for name in reward_set.reward_names():
            try:
                value, parts = split_output(
                    name, self.rewards[name](item.completion, item.answer, metadata)
                )
            except Exception as err:  # noqa: BLE001 - a failing reward is the sample's outcome "error"
                message = f"reward {name!r} raised {type(err).__name__}: {err}"
                return RewardResult(0.0, components, "error", message[:500])
            values[name] = value
            components.update(parts)
        reward = combine(reward_set, values)
        no_answer = any(k.endswith("/" + ANSWER_FOUND) and v == 0.0 for k, v in components.items())
        return RewardResult(reward, components, "no_answer" if no_answer else "ok")
