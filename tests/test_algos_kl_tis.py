"""KL estimators, the KL loss term, truncated importance sampling, by hand."""

import math

import pytest
import torch

from rl.algos import AlgoConfig, kl_estimate, rollout_mismatch, tis_weights
from rl.algos import policy_loss as _policy_loss


def policy_loss(*args, **kwargs):
    """policy_loss with its metrics as plain values."""
    loss, metrics = _policy_loss(*args, **kwargs)
    return loss, {k: m.value for k, m in metrics.items()}


def test_kl_estimators_by_hand():
    lp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    # log r = ref - lp = [-0.5, 1.0]
    torch.testing.assert_close(kl_estimate(lp, ref, "k1"), torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(kl_estimate(lp, ref, "k2"), torch.tensor([0.125, 0.5]))
    k3 = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    torch.testing.assert_close(kl_estimate(lp, ref, "k3"), torch.tensor(k3))
    with pytest.raises(ValueError, match="k3"):
        kl_estimate(lp, ref, "k4")


def test_k3_is_never_negative():
    grid = torch.linspace(-15, 15, 601)
    assert (kl_estimate(torch.zeros_like(grid), grid, "k3") >= 0).all()
    assert (kl_estimate(grid, torch.zeros_like(grid), "k3") >= 0).all()


def test_k1_and_k3_are_unbiased_k2_is_not():
    # exact expectation over tokens sampled from p: sum_x p(x) k(x)
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.2, 0.6])
    exact = sum(pi * math.log(pi / qi) for pi, qi in zip(p.tolist(), q.tolist()))
    expect = {
        name: float((p * kl_estimate(p.log(), q.log(), name)).sum()) for name in ("k1", "k2", "k3")
    }
    assert expect["k1"] == pytest.approx(exact, rel=1e-5)
    assert expect["k3"] == pytest.approx(exact, rel=1e-5)
    assert abs(expect["k2"] - exact) > 1e-3  # 0.3553 vs 0.3601 here


def test_kl_term_is_added_with_its_coefficient():
    lp = torch.zeros(2, 2, requires_grad=True)
    ref = torch.full((2, 2), -0.5)  # log r = -0.5 on every token
    mask = torch.ones(2, 2)
    zero_adv = torch.zeros(2)  # isolate the KL term
    loss, m = policy_loss(
        lp, lp.detach(), zero_adv, mask, AlgoConfig(kl="k1", kl_coef=0.1), ref_logprobs=ref
    )
    assert loss.item() == pytest.approx(0.1 * 0.5)
    assert m["loss/kl"] == pytest.approx(0.5) and m["kl/ref"] == pytest.approx(0.5)
    loss.backward()
    # d/dlogp of 0.1 * mean(lp - ref) over 4 tokens
    torch.testing.assert_close(lp.grad, torch.full((2, 2), 0.1 / 4))

    loss3, _ = policy_loss(
        lp, lp.detach(), zero_adv, mask, AlgoConfig(kl="k3", kl_coef=0.1), ref_logprobs=ref
    )
    assert loss3.item() == pytest.approx(0.1 * (math.exp(-0.5) - 1 + 0.5))


def test_kl_without_reference_logprobs_is_an_error():
    lp = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, lp, torch.ones(1), torch.ones(1, 2), AlgoConfig(kl="k3"))


def test_reference_without_kl_term_is_only_a_metric():
    lp = torch.zeros(1, 2)
    ref = torch.full((1, 2), -1.0)
    loss, m = policy_loss(lp, lp, torch.ones(1), torch.ones(1, 2), AlgoConfig(), ref_logprobs=ref)
    assert loss.item() == pytest.approx(-1.0)
    assert "loss/kl" not in m and m["kl/ref"] == pytest.approx(math.exp(-1) - 1 + 1)


def test_tis_weights_are_capped_and_detached():
    old = torch.zeros(4)
    rollout = -torch.tensor([0.0, math.log(1.5), math.log(3.0), -math.log(2.0)])
    rollout.requires_grad_()
    w = tis_weights(old, rollout, cap=2.0)
    # exp(old - rollout) = 1, 1.5, 3 (capped to 2), 0.5
    torch.testing.assert_close(w, torch.tensor([1.0, 1.5, 2.0, 0.5]))
    assert not w.requires_grad


def test_tis_scales_the_token_loss_and_reports_mismatch():
    old = torch.zeros(1, 4)
    rollout = -torch.tensor([[0.0, math.log(1.5), math.log(3.0), -math.log(2.0)]])
    lp = old.clone().requires_grad_()
    mask = torch.ones(1, 4)
    cfg = AlgoConfig(tis_cap=2.0)
    loss, m = policy_loss(lp, old, torch.ones(1), mask, cfg, rollout_logprobs=rollout)
    # on-policy token loss -1, times weights 1, 1.5, 2, 0.5, token mean
    assert loss.item() == pytest.approx(-(1 + 1.5 + 2 + 0.5) / 4)
    loss.backward()
    torch.testing.assert_close(lp.grad, -torch.tensor([[1.0, 1.5, 2.0, 0.5]]) / 4)
    assert m["mismatch/abs_diff_mean"] == pytest.approx(
        (math.log(1.5) + math.log(3) + math.log(2)) / 4
    )
    assert m["mismatch/abs_diff_max"] == pytest.approx(math.log(3))
    assert m["mismatch/ratio_mean"] == pytest.approx((1 + 1.5 + 3 + 0.5) / 4)
    assert m["tis/capped_frac"] == 0.25
    assert m["tis/weight_mean"] == pytest.approx(5 / 4)

    off, m_off = policy_loss(
        lp, old, torch.ones(1), mask, AlgoConfig(tis_cap=None), rollout_logprobs=rollout
    )
    assert off.item() == pytest.approx(-1.0)
    assert "tis/weight_mean" not in m_off and "mismatch/abs_diff_max" in m_off


def test_mismatch_ignores_padding():
    m = rollout_mismatch(
        torch.tensor([[0.0, 0.0]]), torch.tensor([[-0.2, -7.0]]), torch.tensor([[1, 0]])
    )
    assert m["mismatch/abs_diff_max"].value == pytest.approx(0.2)
