"""Think-Fusion mixing honours its ratio exactly over an epoch and within one sample over any
prefix; orders are deterministic by seed and resumable by cursor."""

import doctest
import itertools
from collections import Counter

import pytest

import sft.data
import sft.encoding
import sft.loss
import sft.mixing
import sft.packing
from policy.data import Example
from rl.config import ConfigError, from_dict
from sft.config import SFTConfig
from sft.data import Cursor, SFTStream
from sft.mixing import (
    COT,
    DIRECT,
    cot_slots,
    default_fusion_epoch_size,
    fusion_order,
    shuffled_order,
)


@pytest.mark.parametrize("module", [sft.mixing, sft.packing, sft.encoding, sft.loss, sft.data])
def test_sft_doctests(module):
    # pytest's --doctest-modules covers rl/ and rewards/ only; run sft's examples here.
    result = doctest.testmod(module)
    assert result.failed == 0


@pytest.mark.parametrize(
    "n_direct, n_cot, fraction",
    [
        (900, 100, 0.1),
        (450, 77, 0.1),
        (1000, 1000, 0.1),
        (37, 5, 0.1),
        (50, 50, 0.5),
        (10, 3, 0.25),
        (8, 0, 0.0),
        (0, 9, 1.0),
    ],
)
def test_fusion_ratio_is_exact_over_epoch_and_prefixes(n_direct, n_cot, fraction):
    order = fusion_order(n_direct, n_cot, fraction, seed=3, epoch=0)
    size = len(order)
    assert size == default_fusion_epoch_size(n_direct, n_cot, fraction)
    k = sum(pool == COT for pool, _ in order)
    assert k == round(size * fraction)
    running = 0
    for i, (pool, _) in enumerate(order, start=1):
        running += pool == COT
        assert abs(running - i * k / size) < 1.0 + 1e-9
    # The default epoch repeats nothing.
    for pool in (COT, DIRECT):
        ids = [i for p, i in order if p == pool]
        assert len(ids) == len(set(ids))


def test_default_epoch_uses_up_the_limiting_pool():
    # 900 direct / 100 CoT at 9:1 -> all 1000; scarce CoT limits the epoch to 10x the CoT pool.
    assert default_fusion_epoch_size(900, 100, 0.1) == 1000
    assert default_fusion_epoch_size(10_000, 100, 0.1) == 1000
    assert default_fusion_epoch_size(90, 10_000, 0.1) == 100


def test_fusion_order_repeats_only_after_a_pass_and_is_seeded():
    order = fusion_order(20, 3, 0.5, seed=1, epoch=0, epoch_size=20)
    cot = [i for p, i in order if p == COT]
    assert len(cot) == 10
    for start in range(0, 9, 3):  # each pass over the 3 CoT examples is a permutation
        assert sorted(cot[start : start + 3]) == [0, 1, 2]
    assert order == fusion_order(20, 3, 0.5, seed=1, epoch=0, epoch_size=20)
    assert order != fusion_order(20, 3, 0.5, seed=2, epoch=0, epoch_size=20)
    assert order != fusion_order(20, 3, 0.5, seed=1, epoch=1, epoch_size=20)


def test_fusion_order_errors():
    with pytest.raises(ValueError, match="needs CoT examples"):
        fusion_order(10, 0, 0.1, seed=0, epoch=0, epoch_size=20)
    with pytest.raises(ValueError, match="epoch is empty"):
        fusion_order(0, 5, 0.1, seed=0, epoch=0)
    with pytest.raises(ValueError, match="cot_fraction"):
        default_fusion_epoch_size(5, 5, 1.5)


def test_cot_slots_spread_evenly():
    for n, k in itertools.product(range(1, 30), range(0, 30)):
        if k > n:
            continue
        slots = cot_slots(n, k, 0.37)
        assert sum(slots) == k
        # Gaps between CoT slots differ by at most one.
        positions = [i for i, s in enumerate(slots) if s]
        gaps = {b - a for a, b in zip(positions, positions[1:])}
        assert not gaps or max(gaps) - min(gaps) <= 1


def test_longcot_order_is_a_seeded_permutation():
    order = shuffled_order(50, seed=0, epoch=0)
    assert sorted(order) == list(range(50))
    assert order == shuffled_order(50, seed=0, epoch=0)
    assert order != shuffled_order(50, seed=0, epoch=1)


def _examples(n_think, n_direct):
    think = [
        Example(prompt=f"t{i}", messages=None, answer="1", response="r", mode="think")
        for i in range(n_think)
    ]
    direct = [
        Example(prompt=f"d{i}", messages=None, answer="1", response="r", mode="direct")
        for i in range(n_direct)
    ]
    return think + direct


def test_stream_fusion_mix_and_cursor_resume():
    stream = SFTStream(_examples(12, 90), "fusion", seed=0, cot_fraction=0.1)
    assert stream.epoch_size == 100
    epoch = stream.epoch(0)
    assert Counter(e.mode for e in epoch) == {"direct": 90, "think": 10}
    batches = list(itertools.islice(stream.batches(16), 10))  # crosses into epoch 1
    assert [len(b) for b, _ in batches] == [16] * 10
    assert batches[6][1] == Cursor(1, 12)
    # Resuming from a saved cursor continues with exactly the same examples.
    resumed = list(itertools.islice(stream.batches(16, start=batches[3][1]), 6))
    assert [b for b, _ in resumed] == [b for b, _ in batches[4:]]
    flat = [e for b, _ in batches for e in b][:100]
    assert flat == epoch


def test_stream_longcot_covers_every_example_once_per_epoch():
    examples = _examples(7, 3)
    stream = SFTStream(examples, "longcot", seed=5)
    assert stream.epoch_size == 10
    assert sorted(e.prompt for e in stream.epoch(0)) == sorted(e.prompt for e in examples)
    with pytest.raises(ValueError, match="mode"):
        SFTStream(examples, "mixed", seed=0)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"cot_fraction": 1.5}, "cot_fraction"),
        ({"mode": "sft"}, "mode"),
        ({"batch_size": 0}, "batch_size"),
        ({"pack_budget": 100, "max_seq_len": 200}, "pack_budget"),
        ({"schedule": "step"}, "schedule"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(SFTConfig, data)
