"""CISPO and SAPO against their papers' formulas, written out here by hand (plain math, no
torch in the expected values), values and gradients; and KL as a reward penalty."""

import math

import pytest
import torch

from rl.algos import AlgoConfig, Cispo, Dapo, Sapo, policy_loss


def _rows(ratios, advantages, old=-1.0):
    """Single-token responses with the given ratios pi/pi_old (per-token = per-sequence)."""
    olds = torch.full((len(ratios), 1), old)
    lp = (olds + torch.tensor(ratios).log().unsqueeze(1)).requires_grad_()
    return lp, olds, torch.tensor(advantages), torch.ones(len(ratios), 1)


@pytest.mark.parametrize(("clip_low", "clip_high"), [(1.0, 0.28), (0.2, 0.1)])
def test_cispo_is_clipped_detached_is_weight_times_reinforce(clip_low, clip_high):
    ratios, advs, old = [0.5, 0.9, 1.2, 1.5], [1.0, -1.0, -2.0, 1.0], -1.0
    lp, olds, adv, mask = _rows(ratios, advs, old)
    cfg = AlgoConfig(loss=Cispo(clip_low=clip_low, clip_high=clip_high), tis_cap=None)
    loss, m = policy_loss(lp, olds, adv, mask, cfg)
    n = len(ratios)
    # MiniMax-M1 eq. 4: J = 1/sum|o| sum_t sg(r_hat) A log pi, r_hat = clip(r, 1-eL, 1+eH)
    r_hat = [min(max(r, 1 - clip_low), 1 + clip_high) for r in ratios]
    logp = [old + math.log(r) for r in ratios]
    expected = -sum(w * a * lg for w, a, lg in zip(r_hat, advs, logp)) / n
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # the weight is a constant: d/dlogp_t = -r_hat_t A_t / n, never zeroed by the clip
    want = torch.tensor([-w * a / n for w, a in zip(r_hat, advs)]).unsqueeze(1)
    torch.testing.assert_close(lp.grad, want)
    binding = sum(r != w for r, w in zip(ratios, r_hat)) / n
    assert m["clip/frac"].value == pytest.approx(binding)


def test_cispo_keeps_the_gradient_where_ppo_clip_drops_it():
    lp, olds, adv, mask = _rows([1.5], [1.0])
    dapo, _ = policy_loss(lp, olds, adv, mask, AlgoConfig(loss=Dapo(), tis_cap=None))
    (g_dapo,) = torch.autograd.grad(dapo, lp)
    cispo, _ = policy_loss(lp, olds, adv, mask, AlgoConfig(loss=Cispo(), tis_cap=None))
    (g_cispo,) = torch.autograd.grad(cispo, lp)
    assert g_dapo.item() == 0.0  # r = 1.5 > 1.28 with A > 0: the clip zeroes it
    assert g_cispo.item() == pytest.approx(-1.28)  # the weight is capped, the token still learns


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_sapo_soft_gate_value_and_gradient():
    # two sequences of two and one tokens; A > 0 on the first, A < 0 on the second
    old = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    ratios = [[1.3, 0.7], [1.6, 1.0]]
    lp = (old + torch.tensor(ratios).log()).requires_grad_()
    mask = torch.tensor([[1, 1], [1, 0]])
    advs = [2.0, -1.5]
    sapo = Sapo(tau_pos=1.0, tau_neg=3.0)
    loss, m = policy_loss(lp, old, torch.tensor(advs), mask, AlgoConfig(loss=sapo, tis_cap=None))
    # SAPO: f(r) = sigmoid(tau (r - 1)) * 4 / tau, tau by the sign of A; loss_t = -f(r_t) A;
    # sequence mean of token means, then mean over the 2 sequences
    cells = [[(0, 0), (0, 1)], [(1, 0)]]
    per_seq, grads = [], torch.zeros(2, 2)
    for i, seq in enumerate(cells):
        tau = sapo.tau_pos if advs[i] > 0 else sapo.tau_neg
        terms = []
        for r_i, t in seq:
            r = ratios[r_i][t]
            s = _sigmoid(tau * (r - 1))
            terms.append(-s * 4 / tau * advs[i])
            # d/dlogp of -A (4/tau) sigmoid(tau (e^logp / old - 1)) = -A 4 s (1 - s) r
            grads[r_i, t] = -advs[i] * 4 * s * (1 - s) * r / len(seq) / 2
        per_seq.append(sum(terms) / len(terms))
    assert loss.item() == pytest.approx(sum(per_seq) / 2, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(lp.grad, grads)
    assert 0 < m["sapo/gate_slope"].value < 1  # off-policy tokens are damped


def test_sapo_is_the_plain_policy_gradient_on_policy():
    lp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    adv = torch.tensor([1.5])
    loss, _ = policy_loss(lp, lp.detach(), adv, torch.ones(1, 3), AlgoConfig(loss="sapo"))
    loss.backward()  # gate slope 4 sigmoid(0) (1 - sigmoid(0)) = 1: gradient -A / |y|
    torch.testing.assert_close(lp.grad, torch.full((1, 3), -1.5 / 3))


def test_kl_as_a_reward_penalty_is_the_reward_to_go_of_the_estimate():
    # on-policy DAPO with zero outcome advantage: only the KL penalty moves the policy
    old = torch.tensor([[-1.0, -2.0, -0.5, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, 0.0]])
    mask = torch.tensor([[0, 1, 1, 1]])
    lp = old.clone().requires_grad_()
    cfg = AlgoConfig(kl="k1", kl_coef=0.1, kl_mode="reward", tis_cap=None)
    loss, m = policy_loss(lp, old, torch.zeros(1), mask, cfg, ref_logprobs=ref)
    loss.backward()
    k1 = [0.0, -2.0 + 1.0, 0.0, 0.0]  # logp_old - logp_ref on the response tokens 1..3
    to_go = [0.0, k1[1] + k1[2] + k1[3], k1[2] + k1[3], k1[3]]
    # advantage A_t = -0.1 * to_go_t; on-policy token loss -A_t r, token mean over 3 tokens
    want = torch.tensor([[0.0] + [0.1 * g / 3 for g in to_go[1:]]])
    torch.testing.assert_close(lp.grad, want)
    assert "loss/kl" not in m and m["kl/ref"].value == pytest.approx(k1[1] / 3)
