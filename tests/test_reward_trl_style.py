"""TRL-convention reward functions (``fn(prompts, completions, **kwargs)``) run unchanged in
sailrl's isolated runtime: detected by signature, called in batches, None = not applicable."""

from __future__ import annotations

import pytest

from rewards import RewardInput, RewardRuntime, RewardsConfig, RewardSetConfig, RuntimeConfig

P = "tests.reward_plugins:"


def _runtime(weights, isolation=True, **runtime):
    custom = {name: P + fn for name, fn in {
        "fmt": "format_reward_func", "acc": "accuracy_reward", "size": "batch_size_reward",
        "hang": "hanging_batch", "short": "short_list"}.items() if name in weights}  # fmt: skip
    cfg = RewardsConfig(
        sets={"default": RewardSetConfig(weights=weights)},
        custom=custom,
        runtime=RuntimeConfig(isolation=isolation, workers=1, **runtime),
    )
    return RewardRuntime(cfg)


@pytest.mark.parametrize("isolation", [True, False])
def test_trl_docs_reward_with_dataset_columns_and_none(isolation):
    items = [
        RewardInput("<think>a</think> 42", "42", metadata={"solution": "42"}, prompt="Q1"),
        RewardInput("no think 41", "42", metadata={"solution": "42"}, prompt="Q2"),
        # no solution column for this sample: accuracy_reward says None (not applicable)
        RewardInput("<think>b</think> x", "x", metadata={"data_source": "chat"}, prompt="Q3"),
    ]
    with _runtime({"fmt": 0.5, "acc": 0.5}, isolation=isolation) as rt:
        results = rt.score(items)
    assert [r.reward for r in results] == [1.0, 0.0, 0.5]
    assert results[0].components == {"fmt": 1.0, "acc": 1.0}
    assert results[2].components == {"fmt": 1.0, "acc/not_applicable": 1.0}
    assert [r.outcome for r in results] == ["ok", "ok", "ok"]


def test_calls_are_batched_inside_worker_processes():
    items = [RewardInput(f"c{i}", "1", prompt=f"q{i}") for i in range(16)]
    with _runtime({"size": 1.0}, chunk_size=32) as rt:
        results = rt.score(items)
    # 16 samples, 1 worker: the runtime sends chunks of ceil(16 / 4) = 4 samples
    assert [r.reward for r in results] == [4.0] * 16


def test_hanging_batch_times_out_its_samples_only():
    items = [RewardInput("ok", "1") for _ in range(4)] + [RewardInput("HANG", "1")]
    items += [RewardInput("fine", "1") for _ in range(3)]
    with _runtime({"hang": 1.0}, timeout_s=0.5, chunk_size=4, max_error_rate=1.0) as rt:
        results = rt.score(items)
    outcomes = [r.outcome for r in results]
    # chunks of ceil(8/4) = 2: the chunk holding HANG (samples 4, 5) times out, the rest score
    assert outcomes == ["ok"] * 4 + ["timeout"] * 2 + ["ok"] * 2
    assert [r.reward for r in results if r.outcome == "ok"] == [1.0] * 6


def test_wrong_length_is_an_error_naming_the_reward():
    with _runtime({"short": 1.0}, isolation=False, max_error_rate=1.0) as rt:
        results = rt.score([RewardInput("a", "1"), RewardInput("b", "1")])
    assert {r.outcome for r in results} == {"error"}
    assert "'short' returned 1 values for 2 completions" in results[0].error


def test_conversational_prompts_get_conversational_completions():
    from rewards.trl_style import call_batch

    seen = {}

    def reward(prompts, completions, answer, **kwargs):
        seen.update(prompts=prompts, completions=completions, answer=answer, kwargs=kwargs)
        return [0.5]

    messages = ({"role": "user", "content": "2+2?"},)
    item = RewardInput("4", "4", mode="direct", metadata={"domain": "math"}, prompt=messages)
    assert call_batch("r", reward, [item]) == [0.5]
    assert seen["prompts"] == [[{"role": "user", "content": "2+2?"}]]
    assert seen["completions"] == [[{"role": "assistant", "content": "4"}]]
    assert seen["answer"] == ["4"] and seen["kwargs"] == {"mode": ["direct"], "domain": ["math"]}
