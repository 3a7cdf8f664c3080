"""Held-out accuracy is scored with the configured correctness reward (``rewards.eval_reward``):
the built-in answer check by default, a plug-in (here a partial-credit scorer) when named."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from policy.data import Example
from rewards import RewardRuntime, RewardsConfig, RuntimeConfig
from rl.evaluation import eval_rewards, evaluate
from rl.offline import correctness_rewards
from rl.prompts import PromptBuilder

EXAMPLES = [Example("List the primes below 6.", None, "2, 3, 5"), Example("Say 7.", None, "7")]
# What the "model" writes per prompt: two of three primes, and a correct 7.
TEXT = {"eval-0": "<think>hm</think> \\boxed{2, 5}", "eval-1": "<think>ok</think> \\boxed{7}"}


def _generate(requests, sampling):
    comps = [
        NS(
            prompt_id=r.prompt_id,
            text=TEXT[r.prompt_id.split("/")[0]],
            token_ids=(1, 2),
            finish_reason="stop",
        )
        for r in requests
        for _ in range(sampling.n)
    ]
    return NS(completions=comps, failures=[])


def _evaluate(rewards: RewardsConfig):
    cfg = eval_rewards(rewards)
    with RewardRuntime(cfg) as runtime:
        return evaluate(
            EXAMPLES, ["think"], PromptBuilder(processor=None), _generate,
            lambda inputs: (runtime.score(inputs), None), samples=2, temperature=1.0,
            max_tokens=8, seed=0, correctness=rewards.eval_reward,
        )  # fmt: skip


def test_held_out_accuracy_uses_the_partial_credit_plugin():
    runtime = RuntimeConfig(workers=1)
    default = _evaluate(RewardsConfig(runtime=runtime))
    partial = _evaluate(
        RewardsConfig(
            runtime=runtime,
            custom={"partial": "tests.reward_plugins:partial_credit"},
            eval_reward="partial",
        )
    )
    # built-in answer check: "2, 5" is wrong, "7" right -> 0.5; partial credit: (2/3 + 1) / 2
    assert default["eval/think/accuracy"] == 0.5
    assert default["eval/correctness_reward"] == "answer"
    assert partial["eval/think/accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert partial["eval/correctness_reward"] == "partial"
    assert partial["eval/think/format_rate"] == 1.0


def test_sailrl_eval_flag_names_a_plugin_by_path():
    cfg = correctness_rewards("tests.reward_plugins:partial_credit")
    assert cfg.eval_reward == "partial_credit"
    assert eval_rewards(cfg).sets["default"].weights == {"partial_credit": 0.5, "format": 0.5}


def test_unknown_or_format_eval_reward_is_a_clear_error():
    with pytest.raises(ValueError, match="rewards.eval_reward: sets: unknown reward 'nope'"):
        eval_rewards(RewardsConfig(eval_reward="nope"))
    with pytest.raises(ValueError, match="eval_reward: 'format' cannot score correctness"):
        RewardsConfig(eval_reward="format")
