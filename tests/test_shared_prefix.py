"""Shared-prefix rows (policy.shared_prefix): the samples of one prompt forwarded as one row,
the prompt once, give the plain path's log-probs, losses, metrics and gradients (up to float
summation order), with far fewer positions run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from learner_fixtures import WORDS
from test_learner_rl import ALGO, BOOKKEEPING, capture_gradients, make, perturb

from policy.batch import Sequence
from policy.checkpoint import init_checkpoint
from policy.learner_config import LearnerConfig
from policy.learner_forward import plan_micro_batches
from policy.shared_prefix import Unit, pack_units, plan_units
from rl.algos.rl_loss import RLLoss


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return init_checkpoint("tiny", tmp_path_factory.mktemp("tiny") / "ckpt", seed=1)


def grouped_batch(tokenizer, prompts: int = 2, group: int = 3) -> list[Sequence]:
    """``prompts`` groups of ``group`` completions (lengths differ) plus a lone sequence and
    a fully masked one, interleaved so groups are not contiguous."""
    rng = np.random.default_rng(0)
    words = lambda n: tokenizer.encode(" ".join(rng.choice(WORDS, n)), add_special_tokens=False)  # noqa: E731
    heads = [words(6 + 3 * p) for p in range(prompts)]
    seqs = []
    for j in range(group):
        for p, head in enumerate(heads):
            tail = words(4 + 2 * j + p)
            adv = 1.0 if (j + p) % 2 else -1.0
            mask = [0] * len(head) + [1] * len(tail)
            rollout = [float(-2.0 + 0.3 * rng.standard_normal()) * m for m in mask]
            seqs.append(Sequence(head + tail, mask, extras={
                "advantages": [adv * m for m in mask], "rollout_logprobs": rollout}))  # fmt: skip
    lone = words(9)
    mask = [0] * 3 + [1] * (len(lone) - 3)
    seqs.append(Sequence(lone, mask, extras={"advantages": [0.5 * m for m in mask],
                                             "rollout_logprobs": [-1.0 * m for m in mask]}))  # fmt: skip
    dead = words(7)
    seqs.append(Sequence(dead, [0] * len(dead), extras={"advantages": [0.0] * len(dead),
                                                        "rollout_logprobs": [0.0] * len(dead)}))  # fmt: skip
    return seqs


def test_units_share_the_prompt_and_split_to_fit_the_budget():
    s = [Sequence([1, 2, 3, 4], [0, 0, 1, 1]), Sequence([9, 9, 9], [0, 1, 1]),
         Sequence([1, 2, 5, 6, 7], [0, 0, 1, 1, 1]), Sequence([1, 2, 8], [0, 0, 1])]  # fmt: skip
    assert plan_units(s, 100) == [Unit((0, 2, 3), 2), Unit((1,), 1)]
    # 2 + 2 + 3 = 7 fits a budget of 7, the third member starts a new unit (prefix repeated)
    assert plan_units(s, 7) == [Unit((0, 2), 2), Unit((3,), 2), Unit((1,), 1)]
    packed = pack_units(s, [Unit((0, 2, 3), 2)], loss_only=True)
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 2, 3, 4, 2]]
    assert packed.segments.tolist() == [[0, 0, 1, 1, 2, 2, 2, 3]]
    mask = packed.attention_mask("bool", torch.float32)[0, 0]
    # member 2's first token (column 4) sees the prompt and itself, not member 1's tokens
    assert mask[4].tolist() == [True, True, False, False, True, False, False, False]
    assert mask[7].tolist() == [True, True, False, False, False, False, False, True]
    # token 2 of every member is predicted from the prompt's last position (column 1)
    assert packed.source.tolist() == [1, 2, 1, 4, 5, 1]
    assert list(zip(packed.rows.tolist(), packed.cols.tolist())) == [
        (0, 2), (0, 3), (1, 2), (1, 3), (1, 4), (2, 2)]  # fmt: skip
    additive = packed.attention_mask("additive", torch.float32)[0, 0]
    assert additive[4, 2] == torch.finfo(torch.float32).min and additive[4, 0] == 0


def test_plain_plan_is_one_sequence_per_unit():
    s = [Sequence([1, 2, 3], [0, 1, 1]), Sequence([1, 2, 3, 4, 5], [0, 1, 1, 1, 1])]
    assert plan_micro_batches(s, 8, share=False) == [[Unit((1,), 5)], [Unit((0,), 3)]]
    assert plan_micro_batches(s, 8, share=True) == [[Unit((0, 1), 1)]]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_logprobs_equal_the_plain_path(tiny_dir, attention):
    plain = make(tiny_dir, shared_prefix=False)
    shared = make(tiny_dir)
    seqs = grouped_batch(shared.tokenizer)
    for learner in (plain, shared):
        perturb(learner)
        learner.module.language_model.config._attn_implementation = attention
        learner.mask_kind = {"sdpa": "bool", "eager": "additive"}[attention]
    a, b = plain.logprobs(seqs), shared.logprobs(seqs)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        torch.testing.assert_close(y, x, rtol=1e-5, atol=2e-5)


def train(path, shared: bool, budget: int = 4096, checkpointing: bool = False):
    learner = make(path, reference=True, entropy="detached", shared_prefix=shared,
                   gradient_checkpointing=checkpointing)  # fmt: skip
    seqs = grouped_batch(learner.tokenizer)
    learner.config = LearnerConfig(**{**learner.config.__dict__, "micro_batch_tokens": budget})
    perturb(learner)
    grads = capture_gradients(learner)
    return learner.train_step(seqs, RLLoss(ALGO)), grads


@pytest.mark.parametrize(("budget", "checkpointing"), [(4096, False), (40, False), (4096, True)])
def test_loss_metrics_and_gradients_equal_the_plain_path(tiny_dir, budget, checkpointing):
    # budget 40: groups are split into several units and micro-batches
    m_plain, g_plain = train(tiny_dir, shared=False, budget=budget)
    m_shared, g_shared = train(tiny_dir, shared=True, budget=budget, checkpointing=checkpointing)
    assert m_shared["padded_tokens"] < m_plain["padded_tokens"]  # the prompts ran once
    assert m_shared["tokens"] == m_plain["tokens"] == m_plain["forward_tokens"]
    # the shared rows' positions hold fewer tokens (a prompt once per unit), none negative
    assert m_shared["forward_tokens"] < m_shared["tokens"]
    assert 0.0 <= m_shared["padding_fraction"] < 1.0
    skip = BOOKKEEPING | {"tokens", "micro_batches", "forward_tokens"}
    for key in sorted(set(m_plain) - skip):
        assert m_shared[key] == pytest.approx(m_plain[key], rel=1e-5, abs=1e-7), key
    assert m_plain["loss"] != 0.0
    for name, grad in g_plain.items():
        torch.testing.assert_close(g_shared[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    assert any(float(g.abs().sum()) > 0 for g in g_plain.values())
