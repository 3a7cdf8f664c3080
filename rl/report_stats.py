"""The statistics of the pipeline report, as small pure functions.

- ``wilson``: a 95% Wilson score interval for an accuracy measured on ``n`` prompts.
- ``paired_diff``: the mean per-prompt difference after - before on the same prompts and its
  95% paired normal interval (mean +- 1.96 x sd / sqrt(n), sd with n - 1).
- ``pass_at_k``: the unbiased pass@k estimator 1 - C(n-c, k) / C(n, k) of one prompt
  (n samples, c correct); ``mean_pass_at_k`` averages it over prompts.

    >>> [round(x, 4) for x in wilson(0.5, 100)]
    [0.4038, 0.5962]
    >>> pass_at_k(4, 1, 2)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # the two-sided 95% normal quantile


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed on ``n`` trials.

    >>> wilson(0.0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"wilson: p must be in [0, 1], got {p}")
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_diff(
    before: Sequence[float], after: Sequence[float], z: float = Z95
) -> tuple[float, tuple[float, float]]:
    """Mean of ``after[i] - before[i]`` and its paired normal interval.

    >>> d, (lo, hi) = paired_diff([0, 0, 1, 1], [1, 0, 1, 1])
    >>> d, round(lo, 4), round(hi, 4)
    (0.25, -0.24, 0.74)
    """
    if len(before) != len(after):
        raise ValueError(f"paired_diff: {len(before)} before vs {len(after)} after values")
    n = len(before)
    if n == 0:
        raise ValueError("paired_diff: no paired values")
    d = [a - b for a, b in zip(after, before)]
    mean = sum(d) / n
    if n == 1:
        return (mean, (-1.0, 1.0))  # one pair says nothing about the spread
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = z * sd / math.sqrt(n)
    return (mean, (mean - half, mean + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt from ``n`` samples of which ``c`` are correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over prompts; ``correct[i]`` holds prompt i's per-sample outcomes."""
    if not correct:
        raise ValueError("mean_pass_at_k: no prompts")
    return sum(pass_at_k(len(c), sum(map(bool, c)), k) for c in correct) / len(correct)
