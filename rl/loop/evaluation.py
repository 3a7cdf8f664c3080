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


def family(example: Any) -> str:
    """The task family a held-out example belongs to, for the per-family breakdown: its
    ``family`` metadata (the synthetic tasks), else its data source, domain, or ``all``."""
    meta = getattr(example, "metadata", None) or {}
    return str(
        meta.get("family") or getattr(example, "data_source", None)
        or getattr(example, "domain", None) or "all"
    )  # fmt: skip


def prompt_records(
    mode: str, examples: Sequence[Any], completions: Sequence[Any], results: Sequence[Any],
    correctness: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """One record per held-out prompt of ``mode``: index, family, the correctness value of
    each sample (None where the reward does not apply), format, the first sample's text and,
    where the example carries one (the synthetic tasks), its reference ``thought``.

    >>> from types import SimpleNamespace as NS
    >>> ex = [NS(metadata={"family": "count"})]
    >>> comps = [NS(prompt_id="eval-0/think", text="a"), NS(prompt_id="eval-0/think", text="b")]
    >>> res = [NS(components={"answer": 1.0, "format": 1.0}), NS(components={"answer": 0.0})]
    >>> prompt_records("think", ex, comps, res, "answer")[0]["values"]
    [1.0, 0.0]
    """
    skip = f"{correctness}/not_applicable"
    by_index: dict[int, dict[str, Any]] = {}
    for comp, res in zip(completions, results):
        i = int(comp.prompt_id.split("/")[0].removeprefix("eval-"))
        ex = examples[i]
        rec = by_index.get(i)
        if rec is None:
            rec = by_index[i] = {
                "i": i, "mode": mode, "family": family(ex), "values": [], "format": [],
                "text": comp.text, "answer": getattr(ex, "answer", None),
                "prompt": str(getattr(ex, "question", ""))[:300]}  # fmt: skip
            thought = (getattr(ex, "metadata", None) or {}).get("thought")
            if isinstance(thought, str) and thought:
                rec["thought"] = thought
        c = res.components
        rec["values"].append(None if skip in c else float(c.get(correctness, 0.0)))
        rec["format"].append(float(c.get("format", 0.0)))
    return [by_index[i] for i in sorted(by_index)]


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
    records: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``examples`` in each of ``modes`` with ``samples`` completions per prompt;
    ``correctness`` names the reward whose value is the accuracy (``rewards.eval_reward``).
    Every prompt of every mode goes to the engine in one batched generate call and is
    scored in one reward call. With ``records`` (a list), one record per prompt and mode is
    appended to it (``prompt_records``: for paired before/after comparisons, pass@k and the
    per-family breakdown). An empty held-out set, or a mode where no completion came back,
    is an error (accuracy 0.0 of nothing would read as a result)."""
    if not examples:
        raise ValueError("the held-out set is empty: name a file with examples (data.eval)")
    metrics: dict[str, Any] = {"eval/correctness_reward": correctness}
    sampling = SamplingSettings(
        n=samples, temperature=temperature, max_tokens=max_tokens, seed=seed
    )
    prompts = {
        f"eval-{i}/{mode}": builder.prompt(f"eval-{i}/{mode}", ex, mode, pixels=False)
        for mode in modes
        for i, ex in enumerate(examples)
    }
    result = generate([builder.request(p) for p in prompts.values()], sampling)
    inputs = [builder.reward_input(prompts[c.prompt_id], c.text) for c in result.completions]
    scored, _ = score(inputs) if inputs else ([], None)
    for mode in modes:
        mine = [k for k, c in enumerate(result.completions) if c.prompt_id.endswith(f"/{mode}")]
        failures = [f for f in result.failures if f.prompt_id.endswith(f"/{mode}")]
        if not mine:
            first = failures[0].message if failures else "no completions"
            raise ValueError(
                f"evaluation ({mode}): none of {len(examples)} held-out prompts produced a "
                f"completion; first failure: {first}"
            )
        comps = [result.completions[k] for k in mine]
        results = [scored[k] for k in mine]
        metrics.update(summarize(mode, comps, results, correctness))
        metrics[f"eval/{mode}/failed_prompts"] = float(len(failures))
        metrics[f"eval/{mode}/prompts"] = float(len(examples) - len(failures))
        if records is not None:
            records.extend(prompt_records(mode, examples, comps, results, correctness))
    return metrics


def pass_metrics(records: Sequence[dict[str, Any]], k: int) -> dict[str, float]:
    """``eval/<mode>/pass@1`` and ``pass@<k>`` (unbiased estimator, mean over prompts) of
    sampled records; a sample counts as correct when its correctness value is 1 (full
    credit); samples the reward does not apply to are left out of n.

    >>> recs = [{"mode": "think", "values": [1.0, 0.0, 0.0, 0.0]},
    ...         {"mode": "think", "values": [0.0, 0.0, 0.0, 0.0]}]
    >>> pass_metrics(recs, 2)
    {'eval/think/pass@1': 0.125, 'eval/think/pass@2': 0.25}
    """
    from rl.loop.eval_stats import mean_pass_at_k

    out: dict[str, float] = {}
    for mode in dict.fromkeys(r["mode"] for r in records):
        correct = [
            [v >= 1.0 for v in r["values"] if v is not None] for r in records if r["mode"] == mode
        ]
        correct = [c for c in correct if len(c) >= k]
        if not correct:
            continue
        for j in sorted({1, k}):
            out[f"eval/{mode}/pass@{j}"] = mean_pass_at_k(correct, j)
    return out
