"""Held-out evaluation: accuracy (mean over k samples per prompt), format rate and response
length, per answer mode (thinking and non-thinking).

Scoring always uses the answer and format rewards (``EVAL_REWARDS``), whatever the training
reward is, so numbers stay comparable across stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rewards import RewardsConfig, RewardSetConfig
from rollout.types import SamplingSettings


def eval_rewards(train: RewardsConfig) -> RewardsConfig:
    """Answer + format, with the training runtime's settings and custom rewards."""
    return RewardsConfig(
        sets={"default": RewardSetConfig(weights={"answer": 0.5, "format": 0.5})},
        runtime=train.runtime,
        custom=dict(train.custom),
        banned_tokens=list(train.banned_tokens),
    )


def summarize(mode: str, completions: Sequence[Any], results: Sequence[Any]) -> dict[str, float]:
    """``eval/<mode>/{accuracy,format_rate,response_length,truncated}`` of one mode.

    >>> from types import SimpleNamespace as NS
    >>> comps = [NS(token_ids=(1, 2), finish_reason="stop"), NS(token_ids=(1,), finish_reason="length")]
    >>> res = [NS(components={"answer": 1.0, "format": 1.0}), NS(components={"answer": 0.0, "format": 1.0})]
    >>> summarize("think", comps, res)["eval/think/accuracy"]
    0.5
    """
    n = max(1, len(results))
    key = f"eval/{mode}"
    return {
        f"{key}/accuracy": sum(r.components.get("answer", 0.0) for r in results) / n,
        f"{key}/format_rate": sum(r.components.get("format", 0.0) for r in results) / n,
        f"{key}/response_length": sum(len(c.token_ids) for c in completions) / n,
        f"{key}/truncated": sum(c.finish_reason == "length" for c in completions) / n,
        f"{key}/samples": float(len(results)),
    }


def evaluate(
    examples: Sequence[Any],
    modes: Sequence[str],
    builder: Any,  # rl.prompts.PromptBuilder
    generate: Callable[[list, SamplingSettings], Any],
    score: Callable[[list], tuple[list, Any]],
    *,
    samples: int,
    temperature: float,
    max_tokens: int,
    seed: int,
) -> dict[str, float]:
    """Evaluate ``examples`` in each of ``modes`` with ``samples`` completions per prompt.
    An empty held-out set, or one where no completion came back, is an error (accuracy 0.0
    of nothing would read as a result)."""
    if not examples:
        raise ValueError("the held-out set is empty: name a file with examples (data.eval)")
    metrics: dict[str, float] = {}
    sampling = SamplingSettings(
        n=samples, temperature=temperature, max_tokens=max_tokens, seed=seed
    )
    for mode in modes:
        prompts = {
            f"eval-{i}": builder.prompt(f"eval-{i}", ex, mode, pixels=False)
            for i, ex in enumerate(examples)
        }
        result = generate([builder.request(p) for p in prompts.values()], sampling)
        inputs = [builder.reward_input(prompts[c.prompt_id], c.text) for c in result.completions]
        if not inputs:
            first = result.failures[0].message if result.failures else "no completions"
            raise ValueError(
                f"evaluation ({mode}): none of {len(prompts)} held-out prompts produced a "
                f"completion; first failure: {first}"
            )
        results, _ = score(inputs)
        metrics.update(summarize(mode, result.completions, results))
        metrics[f"eval/{mode}/failed_prompts"] = float(len(result.failures))
    return metrics
