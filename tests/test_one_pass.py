"""One pass through the data (issue 10): a prompt is rendered, tiled and tokenised once, by the
driver's ``PromptBuilder``, and the engine and the learner use what that pass produced; an
advantage stays one number per sequence until the loss broadcasts it; shaped rewards are
computed once. Each new path is checked against the old one it replaces."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace as NS

import pytest
import torch
from learner_fixtures import rl_sequence

from policy.batch import Sequence, collate
from policy.checkpoint import init_checkpoint, load_checkpoint
from policy.data import Example
from policy.learner import Learner
from policy.learner_config import LearnerConfig
from policy.processor import SAILVLProcessor
from rl.algos import AlgoConfig
from rl.algos.batching import (
    Group,
    Prompt,
    deal,
    flat_shaped,
    shaped_rewards,
    train_groups,
    train_sequences,
    with_shaped,
)
from rl.algos.rl_loss import RLLoss
from rl.loop.prompts import PromptBuilder
from rollout.parity import parity_requests
from rollout.prompts import InvalidPromptError, prepare


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return init_checkpoint("tiny", tmp_path_factory.mktemp("tiny") / "ckpt", seed=1)


@pytest.fixture(scope="module")
def processor(tiny_dir):
    loaded = load_checkpoint(tiny_dir)
    return SAILVLProcessor(loaded.tokenizer, loaded.config)


def _example(request) -> Example:
    text = isinstance(request.prompt, str)
    return Example(
        prompt=request.prompt if text else None,
        messages=None if text else request.prompt,
        answer="1",
        images=request.images,
        mode=request.mode,
    )


@pytest.mark.parametrize("pixels", [True, False])
def test_the_engine_receives_the_token_ids_the_learner_trains_on(processor, tmp_path, pixels):
    builder = PromptBuilder(processor)
    for request in parity_requests(tmp_path):
        prompt = builder.prompt(request.prompt_id, _example(request), pixels=pixels)
        learner_side = processor.process(request.prompt, list(request.images), request.mode)
        assert list(prompt.input_ids) == learner_side.input_ids, request.prompt_id
        sent = builder.request(prompt)
        assert sent.prompt_token_ids == prompt.input_ids
        engine_side = prepare(sent, processor, max_model_len=100_000)
        # the engine's own rendering of the same request gives the same ids (image tokens
        # expanded to the same tile counts): nothing changes by skipping it
        own = prepare(replace(sent, prompt_token_ids=None), processor, max_model_len=100_000)
        assert engine_side.prompt_token_ids == own.prompt_token_ids == prompt.input_ids
        if pixels and request.images:
            assert torch.equal(prompt.pixel_values, learner_side.pixel_values)


def test_given_ids_that_do_not_fit_the_images_are_refused(processor, tmp_path):
    builder = PromptBuilder(processor)
    request = parity_requests(tmp_path)[-1]  # two images
    prompt = builder.prompt("p", _example(request), pixels=False)
    context = processor.img_context_token_id
    short = list(prompt.input_ids)
    short.remove(context)
    with pytest.raises(InvalidPromptError, match="IMG_CONTEXT"):
        prepare(replace(builder.request(prompt), prompt_token_ids=tuple(short)), processor, 10**5)


def test_a_prompt_the_builder_cannot_render_is_left_to_the_engine_to_report(processor, tmp_path):
    builder = PromptBuilder(processor)
    example = Example(prompt="a", messages=None, answer="1", images=(str(tmp_path / "no.png"),))
    prompt = builder.prompt("missing", example, pixels=False)
    assert prompt.input_ids is None
    with pytest.raises(InvalidPromptError, match="no.png"):
        prepare(builder.request(prompt), processor, 10**5)


def _groups():
    comp = lambda ids, reason: NS(  # noqa: E731
        prompt_token_ids=(1, 2, 3),
        token_ids=ids,
        logprobs=tuple(-0.1 * (k + 1) for k in range(len(ids))),
        finish_reason=reason,
    )
    res = lambda r: NS(reward=r)  # noqa: E731
    return [
        Group(Prompt("a", None, "think"), (comp((5, 6, 7), "stop"), comp((8,), "length")),
              (res(1.0), res(0.0))),
        Group(Prompt("b", None, "think"), (comp((9, 9), "stop"), comp((4, 4, 4, 4), "length")),
              (res(0.2), res(0.7))),
    ]  # fmt: skip


def test_shaped_rewards_are_computed_once_and_carried():
    cfg = AlgoConfig(overlong_buffer=2, overlong_penalty=0.5)
    groups = _groups()
    shaped = with_shaped(groups, cfg, max_tokens=4)
    assert torch.equal(flat_shaped(shaped), shaped_rewards(groups, cfg, 4))
    assert flat_shaped(shaped)[-1] == pytest.approx(0.7 - 0.5)  # 4 tokens: full penalty
    with pytest.raises(ValueError, match="with_shaped"):
        train_sequences(groups, cfg, 2)


def _per_token(seq: Sequence, prompt_len: int = 3) -> Sequence:
    """The old record: the advantage expanded over the response as a per-token list."""
    adv, response = seq.scalars["advantages"], len(seq) - prompt_len
    return Sequence(
        input_ids=seq.input_ids,
        loss_mask=seq.loss_mask,
        pixel_values=seq.pixel_values,
        extras={
            "advantages": [0.0] * prompt_len + [adv] * response,
            "rollout_logprobs": [float(x) for x in seq.extras["rollout_logprobs"]],
        },
    )


def test_per_sequence_advantages_collate_to_one_value_per_row():
    cfg = AlgoConfig(mask_truncated=True)
    seqs, adv = train_sequences(with_shaped(_groups(), cfg, 4), cfg, 2)
    mb = collate(seqs, [0, 1, 2])
    assert mb.extras["advantages"].shape == (3,)
    assert torch.equal(mb.extras["advantages"], adv[:3])
    assert seqs[1].loss_mask == [0, 0, 0, 0]  # truncated and masked: no loss tokens
    with pytest.raises(ValueError, match="different extras"):
        collate([seqs[0], replace(seqs[1], scalars={})], [0, 1])


def test_the_loss_of_per_sequence_advantages_equals_the_per_token_expansion():
    cfg = AlgoConfig(mask_truncated=True, tis_cap=1.5)
    seqs, _ = train_sequences(with_shaped(_groups(), cfg, 4), cfg, 2)
    old = [_per_token(s) for s in seqs]
    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    new_mb, old_mb = collate(seqs, [0, 1, 2, 3]), collate(old, [0, 1, 2, 3])
    assert old_mb.extras["advantages"].shape == (4, 7)
    assert torch.equal(new_mb.extras["rollout_logprobs"], old_mb.extras["rollout_logprobs"])
    lp = -torch.nn.functional.softplus(logits).requires_grad_(True)
    results = []
    for mb in (new_mb, old_mb):
        view = NS(
            logprobs=lp,
            loss_mask=mb.loss_mask,
            extras={**mb.extras, "old_logprobs": lp.detach() - 0.05},
            global_token_count=int(mb.loss_mask.sum()),
            global_sequence_count=3,
        )
        loss, metrics = RLLoss(cfg)(view)
        (grad,) = torch.autograd.grad(loss, lp)
        results.append((loss, {k: m.value for k, m in metrics.items()}, grad))
    (loss_a, m_a, g_a), (loss_b, m_b, g_b) = results
    assert torch.equal(loss_a, loss_b) and torch.equal(g_a, g_b)
    assert m_a == m_b


def test_a_learner_step_is_bit_identical_with_per_sequence_advantages(tiny_dir):
    def step(to_record):
        cfg = LearnerConfig(zero_stage=0, dtype="float32", lr=1e-3, micro_batch_tokens=64)
        learner = Learner.from_pretrained(tiny_dir, cfg)
        seqs = [to_record(rl_sequence(learner.tokenizer, i, 4 + i % 3, 9 + i)) for i in range(4)]
        metrics = learner.train_step(seqs, RLLoss(AlgoConfig(tis_cap=1.2)))
        return metrics, {n: p.detach().clone() for n, p in learner.module.named_parameters()}

    def per_sequence(seq: Sequence) -> Sequence:
        adv = next(a for a, m in zip(seq.extras["advantages"], seq.loss_mask) if m)
        rollout = torch.tensor(seq.extras["rollout_logprobs"], dtype=torch.float32)
        return replace(seq, extras={"rollout_logprobs": rollout}, scalars={"advantages": adv})

    (m_old, w_old), (m_new, w_new) = step(lambda s: s), step(per_sequence)
    timing = {"time_s", "tokens_per_s"}
    assert {k: v for k, v in m_old.items() if k not in timing} == {
        k: v for k, v in m_new.items() if k not in timing
    }
    assert m_old["micro_batches"] > 1
    assert all(torch.equal(w_old[n], w_new[n]) for n in w_old)


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_dealt_groups_give_each_rank_the_sequences_of_the_round_robin_split(ranks):
    cfg = AlgoConfig(mask_truncated=True)
    groups = with_shaped(_groups(), cfg, 4)
    records, _ = train_groups(groups, cfg, 2)
    seqs, _ = train_sequences(groups, cfg, 2)
    for rank, part in enumerate(deal(records, ranks)):
        got = [s for g in part for s in g.sequences()]
        want = seqs[rank::ranks]
        assert [s.input_ids for s in got] == [s.input_ids for s in want]
        assert [s.loss_mask for s in got] == [s.loss_mask for s in want]
        assert [s.scalars for s in got] == [s.scalars for s in want]
        for a, b in zip(got, want):
            assert torch.equal(a.extras["rollout_logprobs"], b.extras["rollout_logprobs"])
        # a prompt travels once per rank, however many of its samples the rank trains
        assert len(part) <= len(records) and sum(len(g) for g in part) == len(want)
