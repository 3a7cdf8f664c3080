"""Pure parts of the learner: packing, mini-batches, records, config, LR schedule, buckets."""

from __future__ import annotations

import random

import pytest
import torch

from policy.batch import Sequence, collate, pack_micro_batches, split_mini_batches
from policy.learner_config import LearnerConfig, lr_multiplier
from policy.weight_export import plan_buckets


@pytest.mark.parametrize("seed", range(5))
def test_packing_respects_budget_and_keeps_every_sequence_once(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 300) for _ in range(rng.randint(1, 60))]
    budget = 512
    groups = pack_micro_batches(lengths, budget)
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(len(lengths)))
    for g in groups:
        assert len(g) == 1 or max(lengths[i] for i in g) * len(g) <= budget


def test_oversized_sequence_gets_its_own_micro_batch():
    assert pack_micro_batches([10, 900, 20], 100) == [[1], [2, 0]]


def test_split_mini_batches():
    assert split_mini_batches(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert split_mini_batches(5, 0) == [range(0, 5)]
    assert split_mini_batches(0, 3) == []


def test_collate_pads_right_and_concatenates_images_in_row_order():
    a = Sequence([5, 6, 7], [0, 1, 1], torch.zeros(1, 3, 4, 4), {"adv": [0.0, 1.0, 2.0]})
    b = Sequence([8, 9], [0, 1], torch.ones(2, 3, 4, 4), {"adv": [0.0, 3.0]})
    mb = collate([a, b], [1, 0])
    assert mb.input_ids.tolist() == [[8, 9, 0], [5, 6, 7]]
    assert mb.attention_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert mb.extras["adv"].tolist() == [[0.0, 3.0, 0.0], [0.0, 1.0, 2.0]]
    assert mb.pixel_values.shape[0] == 3 and mb.pixel_values[0].sum() > 0  # b's tiles first


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_ids": [1], "loss_mask": [0]}, "input_ids"),
        ({"input_ids": [1, 2], "loss_mask": [0]}, "loss_mask"),
        ({"input_ids": [1, 2], "loss_mask": [1, 1]}, r"loss_mask\[0\]"),
        ({"input_ids": [1, 2], "loss_mask": [0, 1], "extras": {"adv": [1.0]}}, "adv"),
    ],
)
def test_sequence_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Sequence(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"zero_stage": 1}, "zero_stage"),
        ({"offload": True, "zero_stage": 0}, "offload"),
        ({"lr": 0.0}, "lr"),
        ({"schedule": "cosine", "total_steps": 0}, "total_steps"),
        ({"micro_batch_tokens": 0}, "micro_batch_tokens"),
        ({"betas": (0.9, 1.5)}, "betas"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"learner.{field}"):
        LearnerConfig(**kwargs)


def test_lr_schedule_warmup_constant_and_cosine():
    const = LearnerConfig(warmup_steps=3)
    assert [lr_multiplier(s, const) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cos = LearnerConfig(warmup_steps=2, schedule="cosine", total_steps=12, min_lr_ratio=0.1)
    assert lr_multiplier(2, cos) == pytest.approx(1.0)
    assert lr_multiplier(7, cos) == pytest.approx(0.55)
    assert lr_multiplier(12, cos) == pytest.approx(0.1)
    assert lr_multiplier(50, cos) == pytest.approx(0.1)


def test_plan_buckets_respects_size_and_order():
    sizes = [("a", 4), ("b", 4), ("c", 9), ("d", 1), ("e", 7)]
    assert plan_buckets(sizes, 8) == [["a", "b"], ["c"], ["d", "e"]]


def test_collate_carries_restarting_position_ids():
    packed = Sequence([1, 2, 3, 4], [0, 1, 0, 1], position_ids=[0, 1, 0, 1])
    plain = Sequence([5, 6, 7, 8, 9], [0, 1, 1, 1, 1])
    mb = collate([packed, plain], [0, 1])
    assert mb.position_ids.tolist() == [[0, 1, 0, 1, 4], [0, 1, 2, 3, 4]]
    assert collate([plain], [0]).position_ids is None
