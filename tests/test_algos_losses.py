"""Policy losses against hand-worked values: clip-higher, GSPO, aggregation, micro-batching."""

import math

import pytest
import torch

from rl.algos import LOSSES, AlgoConfig, Dapo, Gspo, token_and_seq_counts
from rl.algos import policy_loss as _policy_loss


def policy_loss(*args, **kwargs):
    """policy_loss with its metrics as plain values."""
    loss, metrics = _policy_loss(*args, **kwargs)
    return loss, {k: m.value for k, m in metrics.items()}


def _one_token_rows(ratios, advantages):
    """A batch of single-token responses with the given ratios pi/pi_old."""
    old = torch.full((len(ratios), 1), -1.0)
    logprobs = (old + torch.tensor(ratios).log().unsqueeze(1)).requires_grad_()
    return logprobs, old, torch.tensor(advantages), torch.ones(len(ratios), 1)


def test_clip_higher_is_asymmetric():
    cfg = AlgoConfig(loss="dapo")  # clip range [1 - 0.20, 1 + 0.28]
    ratios = [0.5, 0.9, 1.1, 1.5]
    lp, old, _, mask = _one_token_rows(ratios, [1.0] * 4)
    loss_pos, m_pos = policy_loss(lp, old, torch.ones(4), mask, cfg)
    # A = +1: token loss max(-r, -clip(r)) -> -0.5, -0.9, -1.1, and -1.28 (capped at 1 + 0.28)
    assert loss_pos.item() == pytest.approx((-0.5 - 0.9 - 1.1 - 1.28) / 4, abs=1e-6)
    assert m_pos["clip/frac_high"] == 0.25 and m_pos["clip/frac_low"] == 0.0
    loss_pos.backward()
    # d/dlogp of -r / 4 is -r / 4 where unclipped, 0 where the clip binds (r = 1.5)
    torch.testing.assert_close(lp.grad.squeeze(1), torch.tensor([-0.5, -0.9, -1.1, 0.0]) / 4)

    lp, old, _, mask = _one_token_rows(ratios, [-1.0] * 4)
    loss_neg, m_neg = policy_loss(lp, old, -torch.ones(4), mask, cfg)
    # A = -1: token loss max(r, clip(r)) -> 0.8 (floored at 1 - 0.20), 0.9, 1.1, 1.5 (no cap)
    assert loss_neg.item() == pytest.approx((0.8 + 0.9 + 1.1 + 1.5) / 4, abs=1e-6)
    assert m_neg["clip/frac_low"] == 0.25 and m_neg["clip/frac_high"] == 0.0
    assert m_neg["clip/frac"] == 0.25
    assert m_neg["ratio/min"] == pytest.approx(0.5)
    assert m_neg["ratio/max"] == pytest.approx(1.5)
    assert m_neg["ratio/mean"] == pytest.approx((0.5 + 0.9 + 1.1 + 1.5) / 4)


def test_ppo_clips_symmetrically_with_clip_low():
    lp, old, adv, mask = _one_token_rows([1.25], [1.0])
    dapo, _ = policy_loss(lp, old, adv, mask, AlgoConfig(loss="dapo"))
    ppo, m = policy_loss(lp, old, adv, mask, AlgoConfig(loss="ppo"))
    assert dapo.item() == pytest.approx(-1.25)  # 1.25 < 1.28: unclipped under clip-higher
    assert ppo.item() == pytest.approx(-1.20)  # capped at 1 + 0.20
    assert m["clip/frac_high"] == 1.0


def _gspo_batch():
    # row 0: log-ratios 0.1 and 0.3 -> s0 = exp(0.2); row 1: log-ratio -0.3 -> s1 = exp(-0.3)
    old = torch.tensor([[-1.0, -2.0, -3.0], [-1.5, -2.5, -3.5]])
    diff = torch.tensor([[0.1, 0.3, 5.0], [-0.3, 9.0, 9.0]])  # padding diffs must not count
    logprobs = (old + diff).requires_grad_()
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    return logprobs, old, torch.tensor([1.0, -1.0]), mask


def test_gspo_sequence_ratio_and_its_small_clip():
    lp, old, adv, mask = _gspo_batch()
    loss, m = policy_loss(lp, old, adv, mask, AlgoConfig(loss="gspo"))
    s0, s1 = math.exp(0.2), math.exp(-0.3)
    # both sequences sit outside [1 - 3e-4, 1 + 4e-4]: A0 = +1 is capped at 1.0004 and
    # A1 = -1 floored at 0.9997; seq-mean-token-mean -> (-1.0004 + 0.9997) / 2
    assert loss.item() == pytest.approx((-(1 + 4e-4) + (1 - 3e-4)) / 2, abs=1e-6)
    assert m["ratio/mean"] == pytest.approx((s0 + s0 + s1) / 3, rel=1e-5)
    assert m["ratio/max"] == pytest.approx(s0, rel=1e-5)
    assert m["clip/frac"] == 1.0
    loss.backward()
    assert torch.equal(lp.grad, torch.zeros_like(lp))


def test_gspo_gradient_is_the_sequence_objective_gradient():
    lp, old, adv, mask = _gspo_batch()
    cfg = AlgoConfig(loss=Gspo(clip_low=0.5, clip_high=0.5))  # nothing clipped
    loss, _ = policy_loss(lp, old, adv, mask, cfg)
    loss.backward()
    s0, s1 = math.exp(0.2), math.exp(-0.3)
    assert loss.item() == pytest.approx((-s0 + s1) / 2, rel=1e-5)
    # d/dlogp_t of (1/2) * (-A_i s_i) with s_i = exp(mean_t diff): -A_i s_i / (2 |y_i|)
    expected = torch.tensor([[-s0 / 4, -s0 / 4, 0.0], [s1 / 2, 0.0, 0.0]])
    torch.testing.assert_close(lp.grad, expected)

    # the same gradient from the sequence objective written out directly
    lp2, old2, adv2, mask2 = _gspo_batch()
    mean_diff = ((lp2 - old2) * mask2).sum(1) / mask2.sum(1)
    (-(adv2 * mean_diff.exp())).mean().backward()
    torch.testing.assert_close(lp.grad, lp2.grad)


def test_aggregation_modes_differ_on_unequal_lengths():
    # on-policy (ratio 1): token loss = -A. Row 0: 3 tokens with A = 1; row 1: 1 token, A = -1
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    lp = torch.zeros(2, 3)
    adv = torch.tensor([1.0, -1.0])
    expected = {
        "token-mean": (-1 - 1 - 1 + 1) / 4,
        "seq-mean-token-mean": (-1 + 1) / 2,
        "seq-mean-token-sum": (-3 + 1) / 2,
    }
    for mode, value in expected.items():
        loss, _ = policy_loss(lp, lp, adv, mask, AlgoConfig(loss=Dapo(agg_mode=mode)))
        assert loss.item() == pytest.approx(value), mode


def test_aggregation_modes_agree_on_equal_lengths():
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    lp = torch.zeros(2, 3)
    adv = torch.tensor([1.0, 0.5])

    def loss(mode):
        return policy_loss(lp, lp, adv, mask, AlgoConfig(loss=Dapo(agg_mode=mode)))[0].item()

    # token-mean: (-1 - 1 - 0.5 - 0.5) / 4; seq-mean-token-mean: (-1 - 0.5) / 2
    assert loss("token-mean") == pytest.approx(-0.75)
    assert loss("seq-mean-token-mean") == pytest.approx(-0.75)
    # seq-mean-token-sum: (-2 - 1) / 2 = length 2 times the token mean
    assert loss("seq-mean-token-sum") == pytest.approx(2 * -0.75)


def _random_batch(seed=0, batch=6, seq=7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 2, 5, 1, 4, 6])[:batch]
    mask = (torch.arange(seq).unsqueeze(0) < lengths.unsqueeze(1)).long()
    old = -torch.rand(batch, seq, generator=g) * 3
    logprobs = old + 0.3 * torch.randn(batch, seq, generator=g)
    rollout = old + 0.5 * torch.randn(batch, seq, generator=g)
    ref = old + 0.4 * torch.randn(batch, seq, generator=g)
    adv = torch.randn(batch, generator=g)
    return logprobs, old, adv, mask, rollout, ref


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_with_global_counts_sum_to_the_mini_batch(loss_name, mode):
    cfg = AlgoConfig(loss=LOSSES[loss_name](agg_mode=mode), kl="k3", kl_coef=0.1, tis_cap=1.5)
    logprobs, old, adv, mask, rollout, ref = _random_batch()

    full_lp = logprobs.clone().requires_grad_()
    full, _ = policy_loss(full_lp, old, adv, mask, cfg, rollout, ref)
    full.backward()

    tokens, seqs = token_and_seq_counts(mask)
    micro_lp = logprobs.clone().requires_grad_()
    total = torch.zeros(())
    for part in (slice(0, 2), slice(2, 3), slice(3, 6)):
        loss, _ = policy_loss(
            micro_lp[part], old[part], adv[part], mask[part], cfg, rollout[part], ref[part],
            global_token_count=tokens, global_seq_count=seqs,
        )  # fmt: skip
        loss.backward()
        total = total + loss.detach()
    torch.testing.assert_close(total, full.detach())
    torch.testing.assert_close(micro_lp.grad, full_lp.grad)
    assert full_lp.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_gradient_sign_follows_the_advantage_when_unclipped(loss_name):
    logprobs, _, adv, mask, _, _ = _random_batch(seed=1)
    lp = logprobs.clone().requires_grad_()
    loss, m = policy_loss(lp, logprobs, adv, mask, AlgoConfig(loss=loss_name))  # on-policy
    loss.backward()
    assert m.get("clip/frac", 0.0) == 0.0
    tok_adv = adv.unsqueeze(1).expand_as(lp)
    on = mask.bool()
    # descending the loss raises logp of tokens with A > 0 and lowers it where A < 0
    assert torch.equal(torch.sign(-lp.grad[on]), torch.sign(tok_adv[on]))
    assert torch.equal(lp.grad[~on], torch.zeros_like(lp.grad[~on]))


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_garbage_in_padding_does_not_reach_loss_or_gradients(loss_name):
    logprobs, old, adv, mask, rollout, ref = _random_batch(seed=2)
    pad = ~mask.bool()
    for t, junk in ((old, float("nan")), (rollout, float("-inf")), (ref, float("inf"))):
        t[pad] = junk
    lp = logprobs.clone()
    lp[pad] = float("-inf")
    lp.requires_grad_()
    cfg = AlgoConfig(loss=loss_name, kl="k3", tis_cap=2.0)
    loss, m = policy_loss(lp, old, adv, mask, cfg, rollout, ref)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(math.isfinite(v) for v in m.values()), m
    assert torch.isfinite(lp.grad).all()
    assert torch.equal(lp.grad[pad], torch.zeros_like(lp.grad[pad]))


def test_fully_masked_batch_gives_zero_loss():
    lp = torch.zeros(2, 3, requires_grad=True)
    loss, m = _policy_loss(lp, lp.detach(), torch.ones(2), torch.zeros(2, 3), AlgoConfig())
    assert loss.item() == 0.0
    assert all(v.weight == 0 for v in m.values() if v.reduce != "sum")  # nothing to average


def test_shape_mismatch_names_the_tensor():
    lp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="old_logprobs"):
        policy_loss(lp, torch.zeros(2, 4), torch.ones(2), torch.ones(2, 3), AlgoConfig())


def test_bf16_logprobs_are_computed_in_float32_and_get_bf16_gradients():
    lp = torch.tensor([[-1.0, -2.0]], dtype=torch.bfloat16, requires_grad=True)
    loss, _ = policy_loss(lp, lp.detach(), torch.ones(1), torch.ones(1, 2), AlgoConfig())
    assert loss.dtype == torch.float32
    loss.backward()
    assert lp.grad.dtype == torch.bfloat16
    torch.testing.assert_close(lp.grad, torch.full((1, 2), -0.5, dtype=torch.bfloat16))
