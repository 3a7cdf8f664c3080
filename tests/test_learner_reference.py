"""The frozen KL reference under ZeRO-3: sharded across two learner ranks (each holds about
half of its parameters), its logprobs equal to the whole starting model's on every rank, even
when the ranks run different numbers of micro-batches, and still the starting weights after
the policy has trained."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.multiprocessing as mp

from policy.learner_config import LearnerConfig

pytestmark = pytest.mark.integration


def _config(**overrides) -> LearnerConfig:
    values = {"dtype": "float32", "lr": 1e-2, "micro_batch_tokens": 48, "reference": True}
    return LearnerConfig(**{**values, **overrides})


def _batch(tokenizer, rank: int):
    from learner_fixtures import text_sequence

    # rank 1 has more and longer sequences: more micro-batches than rank 0
    return [text_sequence(tokenizer, 10 * rank + i, 3, 5 + 20 * rank) for i in range(2 + 2 * rank)]


def _rank_main(rank: int, world: int, port: int, ckpt: str, out: str) -> None:
    from learner_fixtures import join_rank

    join_rank(rank, world, port)
    from policy.learner import Learner
    from sft.loss import nll_loss

    learner = Learner.from_pretrained(ckpt, _config(zero_stage=3))
    shards = {
        name: (p.ds_tensor.numel(), p.ds_numel)
        for name, p in learner.reference.module.named_parameters()
    }
    batch = _batch(learner.tokenizer, rank)
    before = learner.logprobs(batch, model=learner.reference)
    learner.train_step(batch, nll_loss)
    after = learner.logprobs(batch, model=learner.reference)
    policy = learner.logprobs(batch)
    # and an RL step with KL to it: reference logprobs inside train_step, collectively
    from test_learner_rl import ALGO, rl_batch

    from rl.algos.rl_loss import RLLoss

    kl = learner.train_step(rl_batch(learner)[rank::world], RLLoss(ALGO))["kl/ref"]
    torch.save(
        {"shards": shards, "before": before, "after": after, "policy": policy, "kl": kl},
        os.path.join(out, f"rank{rank}.pt"),
    )


def test_zero3_reference_is_sharded_and_computes_the_starting_models_logprobs(tmp_path):
    from policy.checkpoint import init_checkpoint
    from policy.learner import Learner
    from rl.cluster.topology import free_port

    ckpt = init_checkpoint("tiny", tmp_path / "ckpt", seed=3)
    mp.spawn(_rank_main, args=(2, free_port(), str(ckpt), str(tmp_path)), nprocs=2, join=True)
    whole = Learner.from_pretrained(ckpt, _config(zero_stage=0, reference=False))
    total = local = 0
    kls = []
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name, (held, numel) in got["shards"].items():
            assert held <= math.ceil(numel / 2) or numel < 100_000, name  # persistence cut-off
            total, local = total + numel, local + held
        expected = whole.logprobs(_batch(whole.tokenizer, rank))
        assert len(got["before"]) == len(expected) == 2 + 2 * rank
        for before, after, policy, want in zip(
            got["before"], got["after"], got["policy"], expected, strict=True
        ):
            torch.testing.assert_close(before, want, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(after, want, rtol=1e-5, atol=1e-5)  # still the start
            assert (policy - want).abs().max() > 1e-3  # while the policy trained away
        kls.append(got["kl"])
    assert kls[0] == kls[1] > 0  # reduced over ranks; the policy moved away from the start
    assert local < 0.75 * total  # each rank holds about half of the reference


def test_reference_offload_needs_zero3():
    with pytest.raises(ValueError, match="learner.reference_offload"):
        LearnerConfig(reference_offload=True, zero_stage=2)
    assert LearnerConfig(reference_offload=True, zero_stage=3).reference_offload
