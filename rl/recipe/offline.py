"""Offline jobs on one checkpoint, with an in-process vLLM engine and the reward runtime:
held-out evaluation, rejection sampling of CoT traces, and the difficulty filter.

    sailrl eval   --model CKPT --data eval.jsonl [--k 1] [--modes think direct]
    sailrl sample --model CKPT --data FILE --n K --out cot.jsonl
    sailrl filter --model CKPT --data FILE --k 4 --out kept.jsonl

The data may be any schema of docs/data.md; it is checked up front. Sample and filter write
their rows chunk by chunk (``rl.recipe.offline_writer``): a killed job keeps what it wrote and a
rerun continues without duplicates.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from policy.data import Example, ReadOptions, read_examples
from policy.vocab import MODES
from rewards import RewardRuntime, RewardsConfig
from rewards.config import BUILTIN_REWARDS
from rl.config import ConfigError
from rl.loop.evaluation import evaluate, pass_metrics
from rl.loop.prompts import PromptBuilder
from rl.recipe.offline_writer import RowWriter, example_row
from rl.recipe.selection import Scored, best_traces, keep_prompt, pass_rate
from rl.run.eval_rewards import eval_rewards
from rollout.config import RolloutConfig
from rollout.types import SamplingSettings

log = logging.getLogger(__name__)


@dataclass
class OfflineConfig:
    """Engine and sampling settings shared by the offline jobs."""

    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    temperature: float = 1.0
    max_tokens: int = 256
    seed: int = 0


class OfflineSession:
    """An engine on ``model_dir`` plus the answer+format reward runtime; close() when done."""

    def __init__(self, model_dir: str, cfg: OfflineConfig) -> None:
        from rollout.engine import RolloutEngine

        self.cfg = cfg
        self.engine = RolloutEngine(replace(cfg.rollout, model=str(model_dir)))
        self.builder = PromptBuilder(self.engine.processor)
        self.rewards = RewardRuntime(eval_rewards(cfg.rewards))

    def score(self, inputs: list) -> tuple[list, None]:
        return self.rewards.score(inputs), None

    def sample(self, examples: Sequence[Example], n: int, mode: str | None = None,
               seed: int | None = None):  # fmt: skip
        """Per example: the prompt and its n (completion, reward result) pairs."""
        prompts = [
            self.builder.prompt(f"p{i}", ex, mode, pixels=False) for i, ex in enumerate(examples)
        ]
        sampling = SamplingSettings(
            n=n, temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
            seed=self.cfg.seed if seed is None else seed,
        )  # fmt: skip
        result = self.engine.generate([self.builder.request(p) for p in prompts], sampling)
        for failure in result.failures:
            log.warning("prompt skipped: %s", failure.message)
        by_id = {p.prompt_id: p for p in prompts}
        inputs = [self.builder.reward_input(by_id[c.prompt_id], c.text) for c in result.completions]
        scores = self.rewards.score(inputs)
        grouped: dict[str, list] = {}
        for comp, res in zip(result.completions, scores):
            grouped.setdefault(comp.prompt_id, []).append((comp, res))
        return [(p, grouped[p.prompt_id]) for p in prompts if p.prompt_id in grouped]

    def close(self) -> None:
        self.rewards.close()
        self.engine.shutdown()

    def __enter__(self) -> OfflineSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scored(comp, res) -> Scored:
    c = res.components
    return Scored(comp.text, res.reward, c.get("answer", 0.0) == 1.0,
                  c.get("format", 0.0) == 1.0, len(comp.token_ids))  # fmt: skip


def correctness_rewards(reward: str) -> RewardsConfig:
    """Rewards config whose eval reward is ``reward``: a reward name, or a dotted path
    (registered under its function's name).

    >>> correctness_rewards("tests.reward_plugins:partial_credit").custom
    {'partial_credit': 'tests.reward_plugins:partial_credit'}
    """
    if ":" not in reward and "." not in reward:
        return RewardsConfig(eval_reward=reward)
    name = reward.replace(":", ".").rpartition(".")[2]
    name = f"custom_{name}" if name in BUILTIN_REWARDS else name
    return RewardsConfig(custom={name: reward}, eval_reward=name)


@dataclass
class PassAtK:
    """pass@k of ``sailrl eval``: ``n`` samples per prompt at ``temperature`` (n >= k)."""

    k: int
    n: int
    temperature: float = 1.0
    modes: list[str] | None = None  # None: the eval's modes

    def __post_init__(self) -> None:
        if self.k < 1 or self.n < self.k:
            raise ValueError(f"pass@k: need 1 <= k <= n samples, got k={self.k} n={self.n}")
        if not self.temperature > 0:
            raise ValueError(f"pass@k: the temperature must be > 0, got {self.temperature}")


def run_eval(model_dir, data, cfg: OfflineConfig, modes=MODES, k=1,
             max_prompts: int | None = None, options: ReadOptions | None = None,
             pass_at: PassAtK | None = None,
             records_out: str | None = None) -> dict[str, float]:  # fmt: skip
    """Held-out metrics of a checkpoint; with ``pass_at`` also pass@1 / pass@k from sampled
    completions; ``records_out``: a JSON file of the per-prompt records (see
    ``rl.loop.evaluation.prompt_records``) under ``accuracy`` and ``pass``."""
    examples = _load(data, options)[:max_prompts]
    if not len(examples):  # before the engine starts: accuracy 0.0 of nothing is no result
        raise ConfigError(f"--data: {data} holds no examples to evaluate")
    records: dict[str, Any] = {"accuracy": []}
    with OfflineSession(model_dir, cfg) as s:
        t = time.perf_counter()
        metrics = evaluate(
            examples, modes, s.builder, s.engine.generate, s.score, samples=k,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed,
            correctness=cfg.rewards.eval_reward, records=records["accuracy"],
        )  # fmt: skip
        metrics["eval/seconds"] = time.perf_counter() - t
        if pass_at is not None:
            t = time.perf_counter()
            sampled: list[dict[str, Any]] = []
            evaluate(
                examples, pass_at.modes or modes, s.builder, s.engine.generate, s.score,
                samples=pass_at.n,
                temperature=pass_at.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed + 1,
                correctness=cfg.rewards.eval_reward, records=sampled,
            )  # fmt: skip
            metrics.update(pass_metrics(sampled, pass_at.k))
            metrics["eval/pass_seconds"] = time.perf_counter() - t
            records["pass"] = {**asdict(pass_at), "records": sampled}
    if records_out:
        with open(records_out, "w", encoding="utf-8") as fh:
            json.dump(records, fh)
    return metrics


def _chunks(todo: list[int], size: int) -> list[list[int]]:
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _load(data, options: ReadOptions | None):
    try:
        return read_examples(data, options, require=("answer",))
    except ValueError as err:
        raise ConfigError(f"--data: {err}") from err


def _run_chunked(model_dir, data, out, cfg, n, chunk, options, mode, handle) -> RowWriter:
    """Sample ``n`` per prompt, chunk by chunk, writing each chunk's rows as it finishes.
    ``handle(prompt, pairs) -> (rows, counts)`` turns one prompt's samples into output."""
    examples = _load(data, options)
    writer = RowWriter(out)
    if len(examples):
        writer.check(example_row(examples[0], response="", pass_rate=0.0))
    todo = [i for i in range(len(examples)) if i not in writer.done]
    if writer.done:
        log.info(
            "%s: resuming, %d of %d prompts already done", out, len(writer.done), len(examples)
        )
    if todo:
        with OfflineSession(model_dir, cfg) as s:
            for indices in _chunks(todo, chunk):
                rows, counts = [], {}
                seed = cfg.seed + indices[0] * n
                batch = [examples[i] for i in indices]
                for prompt, pairs in s.sample(batch, n, mode=mode, seed=seed):
                    got, c = handle(prompt, pairs)
                    rows += got
                    for key, value in c.items():
                        counts[key] = counts.get(key, 0) + value
                writer.write_chunk(indices, rows, counts)
    writer.finish()
    writer.counts["prompts"] = len(examples)
    return writer


def rejection_sample(model_dir, data, out, cfg: OfflineConfig, n: int = 4, keep: int = 1,
                     chunk: int = 16, options: ReadOptions | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the best correct, well-formed thinking traces as SFT CoT samples."""

    def handle(prompt, pairs):
        best = best_traces([_scored(c, r) for c, r in pairs], keep)
        rows = [example_row(prompt.example, response=b.text, mode="think") for b in best]
        return rows, {"prompts_with_trace": int(bool(best)), "traces": len(rows)}

    w = _run_chunked(model_dir, data, out, cfg, n, chunk, options, "think", handle)
    return {"prompts": w.counts["prompts"], "prompts_with_trace": w.counts.get(
        "prompts_with_trace", 0), "traces": w.counts.get("traces", 0)}  # fmt: skip


def difficulty_filter(model_dir, data, out, cfg: OfflineConfig, k: int = 4,
                      reasoning_domains: Sequence[str] = ("math",), chunk: int = 16,
                      options: ReadOptions | None = None) -> dict[str, Any]:  # fmt: skip
    """pass@k per prompt; keep prompts by the recipe's rule (see rl.recipe.selection.keep_prompt)."""

    def handle(prompt, pairs):
        rate = pass_rate([_scored(c, r) for c, r in pairs])
        ok, why = keep_prompt(rate, prompt.example.domain, reasoning_domains)
        return ([example_row(prompt.example, pass_rate=rate)] if ok else []), {why: 1}

    w = _run_chunked(model_dir, data, out, cfg, k, chunk, options, None, handle)
    reasons = {key: w.counts.get(key, 0) for key in ("kept", "always_solved", "never_solved")}
    return {"prompts": w.counts["prompts"], **reasons}
