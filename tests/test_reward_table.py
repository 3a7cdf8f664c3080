"""Table-driven check of the answer and format rewards (and their default combination)."""

import pytest
from reward_cases import all_cases

from rewards import RewardInput, RewardRuntime, RewardsConfig, RuntimeConfig
from rewards.scoring import Scorer

CASES = all_cases()


@pytest.fixture(scope="module")
def scorer():
    return Scorer(RewardsConfig())


def test_table_is_large_enough():
    assert len(CASES) >= 150
    assert len({c[0] for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize(
    "completion,reference,mode,answer,fmt", [c[1:] for c in CASES], ids=[c[0][:60] for c in CASES]
)
def test_case(scorer, completion, reference, mode, answer, fmt):
    result = scorer.score(RewardInput(completion, reference, mode=mode))
    assert result.outcome in ("ok", "no_answer")
    assert result.reward == pytest.approx(0.9 * answer + 0.1 * fmt)
    if "answer" in result.components:
        assert result.components["answer"] == answer
        assert result.components["format"] == fmt


def test_guards_say_why_in_components(scorer):
    image = scorer.score(RewardInput("<think>a <IMG_CONTEXT></think>\\boxed{4}", "4"))
    assert image.reward == 0.0 and image.components == {"image_token": 1.0}
    huge = scorer.score(RewardInput("<think>" + "x" * 1_000_000 + "</think>\\boxed{4}", "4"))
    assert huge.reward == 0.0 and huge.components == {"too_long": 1.0}


def test_one_megabyte_is_scored_when_the_cap_allows_it():
    config = RewardsConfig(runtime=RuntimeConfig(isolation=False, max_completion_chars=2_000_000))
    big = "<think>" + "x" * 1_000_000 + "</think>\\boxed{4}"
    with RewardRuntime(config) as runtime:
        [result] = runtime.score([RewardInput(big, "4")])
    assert result.reward == 1.0


def test_no_answer_outcome(scorer):
    result = scorer.score(RewardInput("<think>a</think>four", "4"))
    assert result.outcome == "no_answer"
    assert result.components["answer/answer_found"] == 0.0


def test_isolated_pool_gives_the_same_scores_as_in_process(scorer):
    """The process pool changes nothing about the scores of the whole table."""
    batch = [RewardInput(c[1], c[2], mode=c[3]) for c in CASES]
    expected = [scorer.score(item) for item in batch]
    with RewardRuntime(RewardsConfig(runtime=RuntimeConfig(timeout_s=30.0))) as runtime:
        got = runtime.score(batch)
    assert got == expected
    assert runtime.last_stats.samples == len(batch)
