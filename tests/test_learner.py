"""Learner on tiny SAIL-VL2 models, one process (DeepSpeed on CPU with gloo)."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from learner_fixtures import image_sequence, text_sequence, weights

from policy.checkpoint import init_checkpoint, load_checkpoint, load_tensors
from policy.learner import Learner
from policy.learner_config import LearnerConfig
from policy.learner_state import LearnerStateError
from policy.token_logprobs import token_logprobs
from sft.loss import nll_loss


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return init_checkpoint("tiny", tmp_path_factory.mktemp("tiny") / "ckpt", seed=1)


@pytest.fixture(scope="module")
def moe_dir(tmp_path_factory):
    return init_checkpoint("tiny-moe", tmp_path_factory.mktemp("moe") / "ckpt", seed=2)


def make(path, **overrides) -> Learner:
    values = {"zero_stage": 0, "dtype": "float32", "lr": 1e-3, "micro_batch_tokens": 64}
    values.update(overrides)
    return Learner.from_pretrained(path, LearnerConfig(**values))


def text_batch(learner: Learner, n: int = 4, seed: int = 0):
    return [text_sequence(learner.tokenizer, seed + i, 3 + i, 6 + 2 * i) for i in range(n)]


def test_train_step_decreases_nll(tiny_dir):
    learner = make(tiny_dir, zero_stage=2)
    batch = text_batch(learner)
    losses = [learner.train_step(batch, nll_loss)["loss"] for _ in range(6)]
    assert losses[-1] < losses[0] - 0.5, losses
    assert learner.step == 6


def test_micro_batches_give_the_full_batch_gradient(tiny_dir):
    learner = make(tiny_dir, micro_batch_tokens=40)
    reference = copy.deepcopy(learner.module)
    batch = text_batch(learner, n=5)
    captured: dict[str, torch.Tensor] = {}

    def capture():  # record the accumulated gradient instead of stepping
        for name, p in learner.module.named_parameters():
            captured[name] = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
        learner.engine.zero_grad()
        return False, None

    learner._optimizer_step = capture
    metrics = learner.train_step(batch, nll_loss)
    assert metrics["micro_batches"] >= 3

    width = max(len(s) for s in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width)
    attention = torch.zeros(len(batch), width, dtype=torch.long)
    for r, s in enumerate(batch):
        ids[r, : len(s)] = torch.tensor(s.input_ids)
        mask[r, : len(s)] = torch.tensor(s.loss_mask, dtype=torch.float32)
        attention[r, : len(s)] = 1
    dev = learner.device
    logits = reference(
        input_ids=ids.to(dev), attention_mask=attention.to(dev), use_cache=False
    ).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None].to(dev))[
        ..., 0
    ]
    loss = -(logp * mask[:, 1:].to(dev)).sum() / mask.sum()
    loss.backward()
    assert metrics["loss"] == pytest.approx(loss.item(), rel=1e-5)
    for name, p in reference.named_parameters():
        want = torch.zeros_like(p) if p.grad is None else p.grad  # text only: no vision grads
        torch.testing.assert_close(captured[name], want, rtol=1e-4, atol=1e-6, msg=name)


def test_logprobs_equal_direct_forward_with_images(tiny_dir):
    learner = make(tiny_dir, micro_batch_tokens=600)
    reference = copy.deepcopy(learner.module).eval()
    config = learner.module.config
    batch = [
        image_sequence(learner.tokenizer, config, 0),
        text_sequence(learner.tokenizer, 1),
        image_sequence(learner.tokenizer, config, 2, response_words=9),
    ]
    got = learner.logprobs(batch)
    for seq, lp in zip(batch, got):
        assert lp.shape == (len(seq),) and lp[0] == 0.0
        ids = torch.tensor([seq.input_ids], device=learner.device)
        pixels = None if seq.pixel_values is None else seq.pixel_values.to(learner.device)
        with torch.no_grad():
            logits = reference(input_ids=ids, pixel_values=pixels, use_cache=False).logits
        want = (
            torch.log_softmax(logits[0, :-1].float(), -1).gather(-1, ids[0, 1:, None])[:, 0].cpu()
        )
        torch.testing.assert_close(lp[1:], want, rtol=1e-4, atol=1e-4)


def test_token_logprobs_chunking_is_exact():
    logits = torch.randn(2, 7, 11)
    ids = torch.randint(0, 11, (2, 7))
    whole = token_logprobs(logits, ids, chunk=10_000)
    torch.testing.assert_close(token_logprobs(logits, ids, chunk=3), whole)
    want = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    torch.testing.assert_close(whole[:, 1:], want)
    assert torch.all(whole[:, 0] == 0)


def test_frozen_vision_tower_gets_no_updates(tiny_dir):
    learner = make(tiny_dir, freeze_vision=True, micro_batch_tokens=600, lr=1e-2)
    config = learner.module.config
    batch = [image_sequence(learner.tokenizer, config, i) for i in range(2)]
    before = weights(learner.module)
    learner.train_step(batch, nll_loss)
    after = weights(learner.module)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert not any(n.startswith("vision_model.") for n in changed)
    assert any(n.startswith("language_model.") for n in changed)
    assert any(n.startswith("mlp1.") for n in changed)
    exported = [name for bucket in learner.export_weights() for name, _ in bucket]
    assert exported and not any(n.startswith("vision_model.") for n in exported)


def test_freezing_a_missing_part_is_an_error():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="freeze_vision"):
        Learner(model, LearnerConfig(freeze_vision=True, dtype="float32", zero_stage=0))


def test_moe_router_aux_loss_is_added_and_logged(moe_dir):
    learner = make(moe_dir, zero_stage=2)
    assert learner.aux_coef == pytest.approx(0.001)  # from the model config
    metrics = learner.train_step(text_batch(learner), nll_loss)
    assert metrics["aux_loss"] > 0
    off = make(moe_dir, router_aux_loss_coef=0.0)
    assert "aux_loss" not in off.train_step(text_batch(off), nll_loss)


@pytest.mark.parametrize("stage", [0, 2])
def test_nonfinite_loss_skips_the_step_and_is_counted(tiny_dir, stage):
    learner = make(tiny_dir, zero_stage=stage)
    batch = text_batch(learner)
    before = weights(learner.module)

    def nan_loss(mb):
        loss, metrics = nll_loss(mb)
        return loss * float("nan"), metrics

    metrics = learner.train_step(batch, nan_loss)
    assert metrics["skipped_steps"] == 1 and metrics["optimizer_steps"] == 0
    assert learner.step == 0 and learner.skipped_steps == 1
    after = weights(learner.module)
    assert all(torch.equal(before[n], after[n]) for n in before)
    # the next, finite step trains normally
    assert learner.train_step(batch, nll_loss)["optimizer_steps"] == 1
    assert learner.step == 1


def test_mini_batches_give_several_optimizer_steps(tiny_dir):
    learner = make(tiny_dir, mini_batch_size=2)
    metrics = learner.train_step(text_batch(learner, n=6), nll_loss)
    assert metrics["optimizer_steps"] == 3 and learner.step == 3


@pytest.mark.parametrize("preset", ["tiny", "tiny-moe"])
def test_export_weights_buckets_cover_public_names(tiny_dir, moe_dir, preset):
    path = tiny_dir if preset == "tiny" else moe_dir
    learner = make(path)
    bucket_bytes = 64 * 1024
    on_disk = load_tensors(path)
    seen: dict[str, torch.Tensor] = {}
    for bucket in learner.export_weights(bucket_bytes=bucket_bytes):
        sizes = [t.numel() * t.element_size() for _, t in bucket]
        assert len(bucket) == 1 or sum(sizes) <= bucket_bytes
        for name, tensor in bucket:
            assert name not in seen and tensor.device.type == "cpu" and not tensor.requires_grad
            seen[name] = tensor
    assert set(seen) == set(on_disk)
    for name, tensor in on_disk.items():
        torch.testing.assert_close(seen[name], tensor, msg=name)


def test_zero3_export_gathers_full_tensors(moe_dir):
    learner = make(moe_dir, zero_stage=3)
    on_disk = load_tensors(moe_dir)
    exported = {n: t for bucket in learner.export_weights(bucket_bytes=1 << 20) for n, t in bucket}
    assert set(exported) == set(on_disk)
    for name, tensor in on_disk.items():
        torch.testing.assert_close(exported[name], tensor, msg=name)
    assert set(learner.state_dict_for_save()) == set(on_disk)


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_save_load_round_trip_resumes_identically(tiny_dir, tmp_path, stage):
    config = {
        "zero_stage": stage,
        "lr": 1e-2,
        "warmup_steps": 2,
        "schedule": "cosine",
        "total_steps": 10,
    }
    first = make(tiny_dir, **config)
    batch = text_batch(first)
    first.train_step(batch, nll_loss)
    first.save(tmp_path / "ckpt")
    draws = (torch.rand(3), np.random.rand(3), random.random())
    first.train_step(batch, nll_loss)
    want = {n: t for b in first.export_weights() for n, t in b}

    second = make(tiny_dir, **config)
    second.load(tmp_path / "ckpt")
    assert second.step == 1
    assert torch.equal(torch.rand(3), draws[0]) and np.array_equal(np.random.rand(3), draws[1])
    assert random.random() == draws[2]
    second.train_step(batch, nll_loss)
    got = {n: t for b in second.export_weights() for n, t in b}
    for name in want:
        assert torch.equal(got[name], want[name]), name
    assert second.scheduler.get_last_lr() == first.scheduler.get_last_lr()
    # the directory is a loadable SAIL-VL2 checkpoint
    assert load_checkpoint(tmp_path / "ckpt").model is not None


def test_load_names_the_missing_or_corrupt_file(tiny_dir, tmp_path):
    learner = make(tiny_dir)
    learner.save(tmp_path / "ckpt")
    state = tmp_path / "ckpt" / "learner_state" / "rank00000.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(LearnerStateError, match="rank00000.pt"):
        learner.load(tmp_path / "ckpt")
    state.unlink()
    with pytest.raises(FileNotFoundError, match="rank00000.pt"):
        learner.load(tmp_path / "ckpt")
    learner.save(tmp_path / "ckpt2")
    (tmp_path / "ckpt2" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="model.safetensors"):
        learner.load(tmp_path / "ckpt2")
    (tmp_path / "ckpt2" / "learner_state" / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        learner.load(tmp_path / "ckpt2")
