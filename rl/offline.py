"""Offline jobs on one checkpoint, with an in-process vLLM engine and the reward runtime:
held-out evaluation, rejection sampling of CoT traces, and the difficulty filter.

    sailrl eval   --model CKPT --data eval.jsonl [--k 1] [--modes think direct]
    sailrl sample --model CKPT --data FILE --n K --out cot.jsonl
    sailrl filter --model CKPT --data FILE --k 4 --out kept.jsonl
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from policy.data import Example, read_examples
from rewards import RewardRuntime, RewardsConfig
from rl.evaluation import eval_rewards, evaluate
from rl.prompts import PromptBuilder
from rl.selection import Scored, best_traces, keep_prompt, pass_rate
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

    def sample(self, examples: Sequence[Example], n: int, mode: str | None = None):
        """Per example: the prompt and its n (completion, reward result) pairs."""
        prompts = [
            self.builder.prompt(f"p{i}", ex, mode, pixels=False) for i, ex in enumerate(examples)
        ]
        sampling = SamplingSettings(
            n=n, temperature=self.cfg.temperature, max_tokens=self.cfg.max_tokens,
            seed=self.cfg.seed,
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


def _record(ex: Example, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": ex.prompt} if ex.prompt is not None else {
        "messages": list(ex.messages)}  # fmt: skip
    row.update(images=list(ex.images), answer=ex.answer, mode=ex.mode)
    if ex.data_source:
        row["data_source"] = ex.data_source
    if ex.domain:
        row["domain"] = ex.domain
    row.update(ex.metadata)
    row.update(extra)
    return row


def _write(rows: list[dict[str, Any]], out: str | Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out)


def correctness_rewards(reward: str) -> RewardsConfig:
    """Rewards config whose eval reward is ``reward``: a reward name, or a dotted path
    (registered under its function's name).

    >>> correctness_rewards("tests.reward_plugins:partial_credit").custom
    {'partial_credit': 'tests.reward_plugins:partial_credit'}
    """
    if ":" not in reward and "." not in reward:
        return RewardsConfig(eval_reward=reward)
    name = reward.replace(":", ".").rpartition(".")[2]
    name = f"custom_{name}" if name in ("answer", "format", "think_quality") else name
    return RewardsConfig(custom={name: reward}, eval_reward=name)


def run_eval(model_dir, data, cfg: OfflineConfig, modes=("think", "direct"), k=1,
             max_prompts: int | None = None) -> dict[str, float]:  # fmt: skip
    examples = read_examples(data)[:max_prompts]
    with OfflineSession(model_dir, cfg) as s:
        return evaluate(
            examples, modes, s.builder, s.engine.generate, s.score, samples=k,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed,
            correctness=cfg.rewards.eval_reward,
        )  # fmt: skip


def rejection_sample(model_dir, data, out, cfg: OfflineConfig, n: int = 4,
                     keep: int = 1) -> dict[str, Any]:  # fmt: skip
    """Write the best correct, well-formed thinking traces as SFT CoT samples."""
    examples = read_examples(data)
    rows, solved = [], 0
    with OfflineSession(model_dir, cfg) as s:
        for prompt, pairs in s.sample(examples, n, mode="think"):
            best = best_traces([_scored(c, r) for c, r in pairs], keep)
            solved += bool(best)
            rows += [_record(prompt.example, response=b.text, mode="think") for b in best]
    _write(rows, out)
    return {"prompts": len(examples), "prompts_with_trace": solved, "traces": len(rows)}


def difficulty_filter(model_dir, data, out, cfg: OfflineConfig, k: int = 4,
                      reasoning_domains: Sequence[str] = ("math",)) -> dict[str, Any]:  # fmt: skip
    """pass@k per prompt; keep prompts by the recipe's rule (see rl.selection.keep_prompt)."""
    examples = read_examples(data)
    rows, reasons = [], {"kept": 0, "always_solved": 0, "never_solved": 0}
    with OfflineSession(model_dir, cfg) as s:
        for prompt, pairs in s.sample(examples, k):
            rate = pass_rate([_scored(c, r) for c, r in pairs])
            ok, why = keep_prompt(rate, prompt.example.domain, reasoning_domains)
            reasons[why] += 1
            if ok:
                rows.append(_record(prompt.example, pass_rate=rate))
    _write(rows, out)
    return {"prompts": len(examples), **reasons}
