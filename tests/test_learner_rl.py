"""The learner with the RL loss: metrics that do not depend on how the batch is split (micro-
batches here, ranks in test_learner_metrics_ranks), the sequence count, old logprobs taken
from the training forward (bit-identical to the recompute), and KL to the held reference."""

from __future__ import annotations

import pytest
import torch
from learner_fixtures import rl_sequence, weights

from policy.batch import Sequence
from policy.checkpoint import init_checkpoint
from policy.learner import Learner
from policy.learner_config import LearnerConfig
from policy.token_logprobs import token_entropy
from rl.algos import AlgoConfig, Gspo, kl_estimate
from rl.algos.rl_loss import RLLoss
from sft.loss import nll_loss

# Learner bookkeeping that depends on the split by design; every other metric must not.
BOOKKEEPING = {"micro_batches", "padded_tokens", "padding_fraction", "time_s", "tokens_per_s"}
ALGO = AlgoConfig(kl="k3", kl_coef=0.1, tis_cap=1.2)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return init_checkpoint("tiny", tmp_path_factory.mktemp("tiny") / "ckpt", seed=1)


def make(path, **overrides) -> Learner:
    values = {"zero_stage": 0, "dtype": "float32", "lr": 1e-3, "micro_batch_tokens": 4096}
    values.update(overrides)
    return Learner.from_pretrained(path, LearnerConfig(**values))


def rl_batch(learner: Learner, n: int = 6) -> list[Sequence]:
    # lengths within a factor of 2 of each other: a budget of the longest gives 1 per micro-batch
    return [rl_sequence(learner.tokenizer, i, 4 + i % 3, 9 + i) for i in range(n)]


def perturb(learner: Learner, seed: int = 0) -> None:
    """Move the weights away from the held reference so KL and entropy are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def capture_gradients(learner: Learner) -> dict[str, torch.Tensor]:
    """Make the optimiser step record the accumulated (all-reduced) gradient instead."""
    captured: dict[str, torch.Tensor] = {}

    def step():
        for name, p in learner.module.named_parameters():
            captured[name] = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
        learner.engine.zero_grad()
        return False, None

    learner._optimizer_step = step
    return captured


def train_once(path, seqs_of, budget: int | None = None):
    """(metrics, gradients, learner) of one RL step on a perturbed tiny model."""
    learner = make(path, reference=True, entropy="detached")
    seqs = seqs_of(learner)
    if budget is not None:
        learner.config = LearnerConfig(**{**learner.config.__dict__, "micro_batch_tokens": budget})
    perturb(learner)
    grads = capture_gradients(learner)
    metrics = learner.train_step(seqs, RLLoss(ALGO))
    return metrics, grads, learner


def assert_same_metrics(a: dict[str, float], b: dict[str, float]) -> None:
    assert set(a) - BOOKKEEPING == set(b) - BOOKKEEPING
    for key in sorted(set(a) - BOOKKEEPING):
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-12), key


def test_metrics_and_gradients_do_not_depend_on_the_micro_batch_split(tiny_dir):
    one, g_one, learner = train_once(tiny_dir, rl_batch)
    longest = max(len(s) for s in rl_batch(learner))
    six, g_six, _ = train_once(tiny_dir, rl_batch, budget=longest)
    assert (one["micro_batches"], six["micro_batches"]) == (1, 6)
    assert_same_metrics(one, six)
    for name in g_one:
        torch.testing.assert_close(g_six[name], g_one[name], rtol=1e-5, atol=1e-7, msg=name)

    # and the numbers are the true ones: entropy and kl/ref are token means, counted once
    seqs = rl_batch(learner)
    ent, kl, n = 0.0, 0.0, 0
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([s.input_ids])
            mask = torch.tensor(s.loss_mask, dtype=torch.bool)
            ent += float(token_entropy(learner.module(input_ids=ids).logits)[0][mask].sum())
            n += int(mask.sum())
        current = learner.logprobs(seqs)
        ref = learner.logprobs(seqs, model=learner.reference)
        for s, c, r in zip(seqs, current, ref):
            mask = torch.tensor(s.loss_mask, dtype=torch.bool)
            kl += float(kl_estimate(c, r, "k3")[mask].sum())
    assert one["entropy"] == pytest.approx(ent / n, rel=1e-5)
    assert one["kl/ref"] == pytest.approx(kl / n, rel=1e-4)
    assert one["kl/ref"] > 1e-4  # not trivially zero
    assert one["ratio/mean"] == pytest.approx(1.0) and one["loss_tokens"] == n


def test_sequences_without_loss_tokens_do_not_count(tiny_dir):
    learner = make(tiny_dir)
    seqs = rl_batch(learner, 4)
    empty = Sequence(
        input_ids=seqs[0].input_ids,
        loss_mask=[0] * len(seqs[0]),
        extras=seqs[0].extras,
    )
    seen: list[int] = []

    def loss_fn(mb):
        seen.append(mb.global_sequence_count)
        return nll_loss(mb)

    learner.train_step([*seqs, empty], loss_fn)
    assert seen == [4]
    # so a sequence-mean loss (GSPO) is not shrunk by a fully masked (truncated) sample
    gspo = RLLoss(AlgoConfig(loss=Gspo(clip_low=0.5, clip_high=0.5)))
    capture_gradients(learner)
    with_empty = learner.train_step([*seqs, empty], gspo)["loss/policy"]
    without = learner.train_step(seqs, gspo)["loss/policy"]
    assert with_empty == pytest.approx(without, rel=1e-6) and without != 0.0


def count_passes(learner: Learner) -> list[int]:
    """Record each logprobs pass (old or reference recompute) the learner makes."""
    passes: list[int] = []
    original = learner.logprobs

    def counted(batch, **kwargs):
        passes.append(1)
        return original(batch, **kwargs)

    learner.logprobs = counted
    return passes


def test_old_logprobs_from_the_training_forward_equal_the_recompute_bit_for_bit(tiny_dir):
    runs = {}
    for mode in ("auto", "recompute"):
        learner = make(tiny_dir, old_logprobs=mode, micro_batch_tokens=64)
        passes = count_passes(learner)
        seqs = rl_batch(learner)
        rows = [learner.train_step(seqs, RLLoss(AlgoConfig())) for _ in range(3)]
        runs[mode] = (rows, weights(learner.module), len(passes))
    (auto, w_auto, n_auto), (full, w_full, n_full) = runs["auto"], runs["recompute"]
    assert (n_auto, n_full) == (0, 3)  # the wasted pass is gone
    assert auto[0]["micro_batches"] > 1
    for a, b in zip(auto, full):
        for key in ("loss", "loss/policy", "loss/total", "ratio/mean", "tis/weight_mean"):
            assert a[key] == b[key], key  # bit-identical, not approximately
    assert all(torch.equal(w_auto[n], w_full[n]) for n in w_auto)


def test_several_updates_per_call_still_recompute(tiny_dir):
    learner = make(tiny_dir, mini_batch_size=3)
    passes = count_passes(learner)
    metrics = learner.train_step(rl_batch(learner), RLLoss(AlgoConfig()))
    assert metrics["optimizer_steps"] == 2 and passes == [1]
    assert metrics["ratio/max"] > 1.0 or metrics["ratio/min"] < 1.0  # mini-batch 2 moved


@pytest.mark.parametrize(("estimator", "mode"), [("k3", "loss"), ("k1", "reward")])
def test_kl_keeps_the_policy_closer_to_the_reference(tiny_dir, estimator, mode):
    final = {}
    for kl in (False, True):
        torch.manual_seed(0)
        learner = make(tiny_dir, lr=3e-3, reference=True)
        seqs = rl_batch(learner)
        algo = AlgoConfig(kl=estimator, kl_coef=1.0, kl_mode=mode) if kl else AlgoConfig()
        for _ in range(6):
            metrics = learner.train_step(seqs, RLLoss(algo))
        assert ("kl/ref" in metrics) == kl
        current = learner.logprobs(seqs)
        ref = learner.logprobs(seqs, model=learner.reference)
        total = n = 0.0
        for s, c, r in zip(seqs, current, ref):
            mask = torch.tensor(s.loss_mask, dtype=torch.bool)
            total += float(kl_estimate(c, r, "k3")[mask].sum())
            n += int(mask.sum())
        final[kl] = total / n
    assert final[False] > 1e-3  # the policy did move
    assert final[True] < 0.7 * final[False], final


def test_a_kl_loss_without_a_reference_model_is_refused_before_any_work(tiny_dir):
    learner = make(tiny_dir)
    with pytest.raises(ValueError, match="learner.reference: true"):
        learner.train_step(rl_batch(learner), RLLoss(AlgoConfig(kl="k1")))
    assert learner.step == 0
