"""Held-out evaluation: accuracy (mean over k samples per prompt), format rate and response
length, per answer mode (thinking and non-thinking).

Scoring uses the correctness reward ``rewards.eval_reward`` (default: the built-in ``answer``
check; a plug-in such as a partial-credit scorer can be named) plus ``format``, whatever the
training reward is, so numbers stay comparable across stages. The metrics name it:
``eval/correctness_reward`` (the reward set: ``rl.run.eval_rewards``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rollout.types import SamplingSettings


def summarize(
    mode: str, completions: Sequence[Any], results: Sequence[Any], correctness: str = "answer"
) -> dict[str, float]:
    """``eval/<mode>/{accuracy,format_rate,response_length,truncated}`` of one mode; accuracy
    is the mean of the ``correctness`` reward over the samples it applies to.

    >>> from types import SimpleNamespace as NS
    >>> comps = [NS(token_ids=(1, 2), finish_reason="stop"), NS(token_ids=(1,), finish_reason="length")]
    >>> res = [NS(components={"answer": 1.0, "format": 1.0}), NS(components={"answer": 0.0, "format": 1.0})]
    >>> summarize("think", comps, res)["eval/think/accuracy"]
    0.5
    >>> res = [NS(components={"partial": 0.5}), NS(components={"partial/not_applicable": 1.0})]
    >>> summarize("think", comps, res, "partial")["eval/think/accuracy"]
    0.5
    """
    n = max(1, len(results))
    key = f"eval/{mode}"
    # Samples the reward is not applicable to (a TRL-style None) are left out; errors,
    # timeouts and too-long completions count as 0.
    skip = f"{correctness}/not_applicable"
    scored = [r.components.get(correctness, 0.0) for r in results if skip not in r.components]
    return {
        f"{key}/accuracy": sum(scored) / max(1, len(scored)),
        f"{key}/format_rate": sum(r.components.get("format", 0.0) for r in results) / n,
        f"{key}/response_length": sum(len(c.token_ids) for c in completions) / n,
        f"{key}/truncated": sum(c.finish_reason == "length" for c in completions) / n,
        f"{key}/samples": float(len(results)),
    }


def evaluate(
    examples: Sequence[Any],
    modes: Sequence[str],
    builder: Any,  # rl.loop.prompts.PromptBuilder
    generate: Callable[[list, SamplingSettings], Any],
    score: Callable[[list], tuple[list, Any]],
    *,
    samples: int,
    temperature: float,
    max_tokens: int,
    seed: int,
    correctness: str = "answer",
) -> dict[str, Any]:
    """Evaluate ``examples`` in each of ``modes`` with ``samples`` completions per prompt;
    ``correctness`` names the reward whose value is the accuracy (``rewards.eval_reward``).
    An empty held-out set, or one where no completion came back, is an error (accuracy 0.0
    of nothing would read as a result)."""
    if not examples:
        raise ValueError("the held-out set is empty: name a file with examples (data.eval)")
    metrics: dict[str, Any] = {"eval/correctness_reward": correctness}
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
        metrics.update(summarize(mode, result.completions, results, correctness))
        metrics[f"eval/{mode}/failed_prompts"] = float(len(result.failures))
    return metrics
