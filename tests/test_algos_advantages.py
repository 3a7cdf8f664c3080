"""Group-relative advantages against values worked out by hand."""

import math

import pytest
import torch

from rl.algos import ADVANTAGES, AlgoConfig, group_advantages, token_advantages
from rl.config import ConfigError


def test_grpo_normalises_by_group_mean_and_unbiased_std():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 4.0, 6.0, 8.0])
    adv = group_advantages(rewards, group_size=4, eps=1e-6)
    # group 1: mean 0.25; squared deviations 0.5625 + 3 * 0.0625 = 0.75; var 0.75 / 3 = 0.25
    std1 = math.sqrt((0.75**2 + 3 * 0.25**2) / 3)
    # group 2: mean 5; deviations -3, -1, 1, 3; var (9 + 1 + 1 + 9) / 3
    std2 = math.sqrt(20 / 3)
    expected = [0.75 / std1, -0.25 / std1, -0.25 / std1, -0.25 / std1]
    expected += [-3 / std2, -1 / std2, 1 / std2, 3 / std2]
    assert std1 == 0.5
    torch.testing.assert_close(adv, torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_grpo_eps_enters_the_denominator():
    adv = group_advantages(torch.tensor([1.0, 0.0]), 2, eps=0.5)
    # mean 0.5; unbiased std of (1, 0) = sqrt(0.5) ; (1 - 0.5) / (sqrt(0.5) + 0.5)
    a = 0.5 / (math.sqrt(0.5) + 0.5)
    torch.testing.assert_close(adv, torch.tensor([a, -a]))


def test_drgrpo_subtracts_the_mean_only():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 4.0, 6.0, 8.0])
    adv = group_advantages(rewards, 4, std=False)
    expected = [1 - 0.25, -0.25, -0.25, -0.25, 2 - 5, 4 - 5, 6 - 5, 8 - 5]
    torch.testing.assert_close(adv, torch.tensor(expected))


@pytest.mark.parametrize("estimator", ["grpo", "drgrpo"])
@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, 0.7, 1e6])
def test_identical_rewards_give_exact_zeros(estimator, value):
    rewards = torch.tensor([value] * 5 + [0.0, 1.0, 0.0, 1.0, 0.0])
    adv = ADVANTAGES[estimator]().compute(rewards, 5)
    assert torch.isfinite(adv).all()
    assert torch.equal(adv[:5], torch.zeros(5))
    assert (adv[5:] != 0).all()


def test_group_of_one_sample_is_zero_not_nan():
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.3]), 1)
    assert torch.equal(adv, torch.zeros(3))


def test_advantages_sum_to_zero_within_each_group():
    rewards = torch.rand(6 * 8, generator=torch.Generator().manual_seed(0))
    for estimator in ("grpo", "drgrpo"):
        sums = ADVANTAGES[estimator]().compute(rewards, 8).view(6, 8).sum(dim=1)
        torch.testing.assert_close(sums, torch.zeros(6), atol=1e-5, rtol=0)


def test_rewards_not_a_multiple_of_group_size_are_rejected():
    with pytest.raises(ValueError, match="group_size=4"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ConfigError, match="advantage: 'rloo' is not allowed; choose one of 'grpo'"):
        AlgoConfig(advantage="rloo")


def test_token_broadcast_fills_the_response_mask_only():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    tok = token_advantages(torch.tensor([0.5, -2.0, 3.0]), mask)
    expected = torch.tensor([[0.5, 0.5, 0.5, 0.0], [-2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(tok, expected)
    with pytest.raises(ValueError, match="mask rows"):
        token_advantages(torch.zeros(2), mask)
