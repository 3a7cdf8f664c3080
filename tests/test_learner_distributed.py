"""Two data-parallel learner ranks (ZeRO-2, gloo, 127.0.0.1) stay identical after a step."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

pytestmark = pytest.mark.integration


def _rank_main(rank: int, world: int, port: int, ckpt: str, out: str) -> None:
    from learner_fixtures import join_rank

    join_rank(rank, world, port)
    from learner_fixtures import text_sequence

    from policy.learner import Learner
    from policy.learner_config import LearnerConfig
    from sft.loss import nll_loss

    config = LearnerConfig(
        zero_stage=2, dtype="float32", lr=1e-2, micro_batch_tokens=48, mini_batch_size=4
    )
    learner = Learner.from_pretrained(ckpt, config)
    # each rank trains on different data (and rank 1 on longer sequences, so it packs into
    # more micro-batches: the ranks must still agree)
    batch = [text_sequence(learner.tokenizer, 10 * rank + i, 3, 5 + 20 * rank) for i in range(4)]
    metrics = learner.train_step(batch, nll_loss)
    exported = {n: t for b in learner.export_weights() for n, t in b}
    torch.save({"weights": exported, "metrics": metrics}, os.path.join(out, f"rank{rank}.pt"))


def test_two_rank_zero2_keeps_weights_identical(tmp_path):
    from policy.checkpoint import init_checkpoint, load_tensors

    ckpt = init_checkpoint("tiny", tmp_path / "ckpt", seed=3)
    from rl.cluster.topology import free_port

    port = free_port()
    # spawned children inherit sys.path, so they import this module and learner_fixtures
    mp.spawn(_rank_main, args=(2, port, str(ckpt), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    start = load_tensors(ckpt)
    a, b = results[0]["weights"], results[1]["weights"]
    assert set(a) == set(b) == set(start)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any(not torch.equal(a[n], start[n]) for n in a)  # it did train
    m0, m1 = results[0]["metrics"], results[1]["metrics"]
    for key in ("loss", "grad_norm", "tokens", "loss_tokens", "micro_batches", "optimizer_steps"):
        assert m0[key] == m1[key], key  # all-reduced: every rank reports the global value
    assert m0["optimizer_steps"] == 2  # 8 sequences, global mini-batch 4


def _rl_rank_main(rank: int, world: int, port: int, ckpt: str, out: str) -> None:
    from learner_fixtures import join_rank

    join_rank(rank, world, port)
    from test_learner_rl import rl_batch, train_once

    # the rank's round-robin share of the same mini-batch, as rl.cluster.actors deals it
    metrics, grads, _ = train_once(ckpt, lambda learner: rl_batch(learner)[rank::world])
    torch.save({"metrics": metrics, "grads": grads}, os.path.join(out, f"rl{rank}.pt"))


def test_rl_metrics_and_gradients_are_the_same_on_one_and_two_ranks(tmp_path):
    """Every metric within 1e-6 (relative) and equal gradients, one rank vs two."""
    from test_learner_rl import BOOKKEEPING, assert_same_metrics, rl_batch, train_once

    from policy.checkpoint import init_checkpoint
    from rl.cluster.topology import free_port

    ckpt = init_checkpoint("tiny", tmp_path / "ckpt", seed=1)
    mp.spawn(_rl_rank_main, args=(2, free_port(), str(ckpt), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rl{r}.pt", weights_only=True) for r in range(2)]
    one, grads, _ = train_once(str(ckpt), rl_batch)
    for rank in ranks:
        assert_same_metrics(rank["metrics"], one)
        for name, g in grads.items():
            torch.testing.assert_close(rank["grads"][name], g, rtol=1e-5, atol=1e-7, msg=name)
    assert {"kl/ref", "entropy", "ratio/min", "mismatch/abs_diff_max"} <= set(one) - BOOKKEEPING
