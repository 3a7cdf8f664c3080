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
from rewards.trl_style import call_batch, is_trl_reward

ANSWER_FOUND = "answer_found"  # a reward returning this extra as 0.0 marks "no_answer"
NOT_APPLICABLE = "not_applicable"  # component marking a TRL-style None


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
    """Scores samples in the current process with the rewards named by ``config``.

    Rewards following TRL's convention (``fn(prompts, completions, **columns)``, see
    ``rewards.trl_style``) are in ``batched``: :meth:`score_many` calls each once per batch.
    """

    def __init__(self, config: RewardsConfig, paths: Mapping[str, str] | None = None):
        self.config = config
        self.rewards: dict[str, RewardFn] = load_rewards(paths or reward_paths(config), config)
        self.batched = {name for name, fn in self.rewards.items() if is_trl_reward(fn)}

    def score(self, item: RewardInput) -> RewardResult:
        return self.score_many([item])[0]

    def score_many(self, items: list[RewardInput]) -> list[RewardResult]:
        """One result per item; each TRL-style reward is called once for the items whose
        reward set uses it."""
        results: list[RewardResult | None] = [precheck(i, self.config) for i in items]
        todo = [k for k, r in enumerate(results) if r is None]
        sets = {k: self.config.sets[route(items[k].metadata, self.config)] for k in todo}
        given: dict[int, dict[str, float | None]] = {k: {} for k in todo}
        for name in sorted(self.batched):
            users = [k for k in todo if name in sets[k].reward_names() and results[k] is None]
            if not users:
                continue
            try:
                values = call_batch(name, self.rewards[name], [items[k] for k in users])
            except Exception as err:  # noqa: BLE001 - the batch's samples end as "error"
                message = f"reward {name!r} raised {type(err).__name__}: {err}"[:500]
                for k in users:
                    results[k] = RewardResult(0.0, {}, "error", message)
                continue
            for k, value in zip(users, values):
                given[k][name] = value
        for k in todo:
            if results[k] is None:
                results[k] = self.score_with(sets[k], items[k], given[k])
        return results  # type: ignore[return-value]

    def score_with(
        self,
        reward_set: RewardSetConfig,
        item: RewardInput,
        given: Mapping[str, float | None] | None = None,
    ) -> RewardResult:
        """Score ``item`` with ``reward_set``; ``given`` holds values already computed in a
        batch (None: not applicable, left out of the combination)."""
        metadata = {**item.metadata, "mode": item.mode}
        given = given or {}
        values: dict[str, float] = {}
        components: dict[str, float] = {}
        for name in reward_set.reward_names():
            if name in given:
                if given[name] is None:  # not applicable: no value, only the marker
                    components[f"{name}/{NOT_APPLICABLE}"] = 1.0
                    continue
                value, parts = given[name], {name: given[name]}
            else:
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
