"""Dynamic sampling, overlong penalty and truncation masks, by hand."""

import pytest
import torch

from rl.algos import BatchFiller, informative_groups, mask_truncated, overlong_penalty


def test_informative_groups_drops_uniform_rewards():
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.2, 1.0, 0.2, 0.2])
    # groups of 3: (1,1,0) mixed, (0,0,0) all equal, (0.5,0.5,0.2) mixed, (1,0.2,0.2) mixed
    assert informative_groups(rewards, 3).tolist() == [True, False, True, True]
    # groups of 2: (1,1) (0,0) (0,0) (.5,.5) (.2,1) (.2,.2)
    assert informative_groups(rewards, 2).tolist() == [False, False, False, False, True, False]
    with pytest.raises(ValueError, match="group_size=5"):
        informative_groups(rewards, 5)


def test_filler_keeps_sampling_until_full_and_trims_surplus():
    filler = BatchFiller(target_groups=3, group_size=2, max_extra_rounds=5)
    filler.add(["a", "b", "c"], torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]))  # keeps b
    assert filler.wants_more() and filler.missing == 2
    filler.add(["d", "e"], torch.tensor([0.0, 0.0, 1.0, 1.0]))  # keeps none
    assert filler.wants_more() and filler.missing == 2
    filler.add(["f", "g", "h"], torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0]))  # keeps all
    assert not filler.wants_more()
    report = filler.finish()
    assert report.groups == ("b", "f", "g")
    assert (report.rounds, report.extra_rounds) == (3, 2)
    assert (report.dropped, report.surplus, report.full) == (2 + 2, 1, True)


def test_filler_stops_after_max_extra_rounds():
    filler = BatchFiller(target_groups=2, group_size=2, max_extra_rounds=2)
    rounds = 0
    while filler.wants_more():
        filler.add(["x", "y"], torch.ones(4))  # every group uniform: nothing kept
        rounds += 1
    assert rounds == 1 + 2
    report = filler.finish()
    assert report.groups == () and not report.full and report.dropped == 6
    with pytest.raises(RuntimeError, match="finish"):
        filler.add(["z"], torch.tensor([0.0, 1.0]))


def test_filler_without_filtering_takes_one_round_and_keeps_everything():
    filler = BatchFiller(target_groups=2, group_size=2, max_extra_rounds=3, filter_groups=False)
    filler.add(["x", "y"], torch.ones(4))
    assert not filler.wants_more()
    report = filler.finish()
    assert report.groups == ("x", "y") and report.dropped == 0 and report.rounds == 1


def test_filler_rejects_mismatched_rewards():
    filler = BatchFiller(target_groups=2, group_size=4, max_extra_rounds=0)
    with pytest.raises(ValueError, match="groups of 4"):
        filler.add(["x", "y"], torch.ones(6))


def test_overlong_penalty_by_hand():
    lengths = torch.tensor([5, 12, 13, 16, 20, 25])
    # max 20, buffer 8: free up to 12, then (12 - len) / 8, -1 from 20 on
    expected = torch.tensor([0.0, 0.0, -1 / 8, -4 / 8, -1.0, -1.0])
    torch.testing.assert_close(overlong_penalty(lengths, max_len=20, buffer=8), expected)
    torch.testing.assert_close(
        overlong_penalty(lengths, max_len=20, buffer=8, penalty=0.5), 0.5 * expected
    )
    assert torch.equal(overlong_penalty(lengths, 20, 0), torch.zeros(6))
    with pytest.raises(ValueError, match="overlong_buffer"):
        overlong_penalty(lengths, 20, 21)


def test_mask_truncated_zeroes_length_stops_only():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    out = mask_truncated(mask, ["stop", "length", "abort"])
    assert out.tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert out.dtype == mask.dtype
    with pytest.raises(ValueError, match="finish reasons"):
        mask_truncated(mask, ["stop"])
