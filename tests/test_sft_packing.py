"""Packed rows give every sample exactly the logprobs it gets alone (attention stays inside
each sample), through both position-id resets and the explicit block-causal mask."""

import pytest
import torch
from PIL import Image
from sft_tiny import tiny_model

from sft.encoding import encode_sft
from sft.packing import SFTSample, block_causal_mask, pack_groups, pack_samples


def _token_logprobs(logits, ids):
    return torch.log_softmax(logits[:-1].float(), -1).gather(-1, ids[1:, None])[:, 0]


@pytest.fixture(scope="module")
def model_and_samples():
    model, processor = tiny_model(seed=1)
    model.eval()
    red = Image.new("RGB", (112, 112), (220, 30, 30))
    wide = Image.new("RGB", (300, 100), (30, 70, 220))  # several tiles + thumbnail
    samples = [
        encode_sft(
            processor, "What is 3 + 4?", "<think>\n3+4 = 7.\n</think>\n\n\\boxed{7}", "think"
        ),
        encode_sft(
            processor, "How many red circles?", "The answer is \\boxed{2}.", "direct", [red]
        ),
        encode_sft(
            processor,
            "Read the chart.",
            "<think>\nBar B reaches 5.\n</think>\n\n\\boxed{5}",
            "think",
            [wide],
        ),
    ]
    return model, samples


@pytest.mark.parametrize("route", ["position_ids", "block_mask", "block_mask_eager"])
def test_packed_logprobs_equal_unpacked(model_and_samples, route):
    model, samples = model_and_samples
    with torch.no_grad():
        alone = []
        for s in samples:
            ids = torch.tensor(s.input_ids)
            out = model(input_ids=ids[None], pixel_values=s.pixel_values, use_cache=False)
            alone.append(_token_logprobs(out.logits[0], ids))
        row = pack_samples(samples)
        kwargs = {"position_ids": row.position_ids[None], "use_cache": False}
        if route != "position_ids":
            kwargs["attention_mask"] = block_causal_mask(row.seq_lens)
        if route == "block_mask_eager":
            model.set_attn_implementation("eager")
        try:
            packed = model(input_ids=row.input_ids[None], pixel_values=row.pixel_values, **kwargs)
        finally:
            model.set_attn_implementation("sdpa")
        lp = _token_logprobs(packed.logits[0], row.input_ids)
    start = 0
    for s, ref in zip(samples, alone):
        # Within-sample predictions (targets start+1 .. start+len-1) must match.
        got = lp[start : start + len(s) - 1]
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
        start += len(s)
    # Sanity: without resets the later samples do see earlier ones, so the test can fail.
    with torch.no_grad():
        leaky = model(input_ids=row.input_ids[None], pixel_values=row.pixel_values, use_cache=False)
    n0 = len(samples[0])
    leaky_lp = _token_logprobs(leaky.logits[0], row.input_ids)[n0 : n0 + len(samples[1]) - 1]
    assert not torch.allclose(leaky_lp, alone[1], atol=1e-3)


def test_cross_sample_targets_carry_no_loss(model_and_samples):
    _, samples = model_and_samples
    row = pack_samples(samples)
    start = 0
    for s in samples:
        assert row.loss_mask[start] == 0  # first token of each sample is a prompt token
        start += len(s)
    assert row.loss_mask.sum() == sum(s.num_loss_tokens for s in samples)
    assert row.pixel_values.shape[0] == sum(
        s.pixel_values.shape[0] for s in samples if s.pixel_values is not None
    )
    assert row.position_ids.tolist() == [p for s in samples for p in range(len(s))]


def _dummy(n):
    return SFTSample(tuple(range(n)), (0,) + (1,) * (n - 1))


def test_pack_groups_respects_budget_and_order():
    lengths = [5, 3, 4, 8, 1, 1, 2]
    groups = pack_groups(lengths, budget=8)
    assert [i for g in groups for i in g] == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in g) <= 8 for g in groups)
    assert groups == [[0, 1], [2], [3], [4, 5, 6]]
    with pytest.raises(ValueError, match="more than the pack budget"):
        pack_groups([9], budget=8)
    assert pack_samples([_dummy(3), _dummy(4)]).seq_lens == (3, 4)


def test_block_causal_mask_shape_and_values():
    mask = block_causal_mask([2, 3], dtype=torch.float32)
    assert mask.shape == (1, 1, 5, 5)
    allowed = (mask[0, 0] == 0).int()
    assert allowed.tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]
