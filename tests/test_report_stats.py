"""The report's statistics: Wilson interval, paired difference interval, unbiased pass@k."""

from __future__ import annotations

import itertools
import math

import pytest

from rl.evaluation import pass_metrics
from rl.report_stats import mean_pass_at_k, paired_diff, pass_at_k, wilson


def test_wilson_matches_known_values():
    # 8 of 10 and 50 of 100: the textbook Wilson score intervals (z = 1.96)
    lo, hi = wilson(0.8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    lo, hi = wilson(0.5, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.4038, 0.5962)
    # never outside [0, 1], and not degenerate at 0 successes
    lo, hi = wilson(0.0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17
    with pytest.raises(ValueError, match="p must be in"):
        wilson(1.5, 10)


def test_paired_diff_matches_a_hand_computed_case():
    before = [0, 1, 0, 0, 1, 0]
    after = [1, 1, 1, 0, 0, 1]
    # d = [1, 0, 1, 0, -1, 1]: mean 1/3; sd = sqrt(sum((d - 1/3)^2) / 5) = sqrt(10/3 / 5)
    sd = math.sqrt((10 / 3) / 5)
    diff, (lo, hi) = paired_diff(before, after)
    assert diff == pytest.approx(1 / 3)
    assert lo == pytest.approx(1 / 3 - 1.959964 * sd / math.sqrt(6), abs=1e-6)
    assert hi == pytest.approx(1 / 3 + 1.959964 * sd / math.sqrt(6), abs=1e-6)
    # the same outcomes unpaired would not change the mean but pairing is what the CI uses:
    # identical lists give a zero-width interval at 0
    assert paired_diff(before, before) == (0.0, (0.0, 0.0))
    with pytest.raises(ValueError, match="6 before vs 5 after"):
        paired_diff(before, after[:5])


def _brute_force(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (c correct) that hold a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k)), (n, c, k)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(n, 0, n + 1)


def test_pass_metrics_averages_over_prompts_and_counts_full_credit():
    recs = [
        {"mode": "think", "values": [1.0, 0.0, 0.0, 1.0]},
        {"mode": "think", "values": [0.5, 0.5, 0.5, 0.5]},  # partial credit is not a pass
        {"mode": "direct", "values": [1.0, 1.0, 1.0, 1.0]},
    ]
    got = pass_metrics(recs, 4)
    assert got["eval/think/pass@1"] == pytest.approx((0.5 + 0) / 2)
    assert got["eval/think/pass@4"] == pytest.approx((1 + 0) / 2)
    assert got["eval/direct/pass@4"] == 1.0
    assert mean_pass_at_k([[True, False], [False, False]], 2) == 0.5
