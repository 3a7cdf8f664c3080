"""Epoch orders for the two SFT stages: LongCoT (every example once, shuffled) and Think-Fusion
(direct-answer and CoT examples interleaved at a fixed ratio).

Think-Fusion spreads its ``k = round(N * cot_fraction)`` CoT slots evenly over the ``N`` slots
of an epoch (a Bresenham line with a seeded phase), so the epoch holds exactly ``k`` CoT
samples and every prefix - every stretch of steps, if training stops mid-epoch - is within one
sample of the ratio. Each pool is read as seeded permutations, reshuffled on each pass, so no
example repeats before its pool is used up. Orders are pure functions of (sizes, ratio, seed,
epoch): a resumed run recomputes its epoch order and skips to its cursor.

    >>> order = fusion_order(n_direct=9, n_cot=1, cot_fraction=0.1, seed=0, epoch=0)
    >>> [pool for pool, _ in order].count("cot"), len(order)
    (1, 10)
"""

from __future__ import annotations

import math
import random

DIRECT = "direct"
COT = "cot"


def default_fusion_epoch_size(n_direct: int, n_cot: int, cot_fraction: float) -> int:
    """The longest epoch in which neither pool repeats an example.

    >>> default_fusion_epoch_size(900, 500, 0.1)
    1000
    >>> default_fusion_epoch_size(900, 50, 0.1)
    500
    """
    if not 0.0 <= cot_fraction <= 1.0:
        raise ValueError(f"cot_fraction must lie in [0, 1], got {cot_fraction}")
    limits = []
    if cot_fraction < 1.0:
        limits.append(n_direct / (1.0 - cot_fraction))
    if cot_fraction > 0.0:
        limits.append(n_cot / cot_fraction)
    # The small epsilon absorbs float error (900 / 0.9 is 999.9999999999999).
    return int(math.floor(min(limits) + 1e-9))


def cot_slots(n: int, k: int, phase: float) -> list[bool]:
    """``n`` flags with exactly ``k`` True, evenly spread; ``phase`` in [0, 1) shifts them.

    >>> cot_slots(10, 3, 0.0)
    [False, False, False, True, False, False, True, False, False, True]
    """
    if not 0 <= k <= n:
        raise ValueError(f"cannot place {k} CoT slots in an epoch of {n}")
    if n == 0:
        return []
    step = k / n
    return [math.floor((i + 1) * step + phase) > math.floor(i * step + phase) for i in range(n)]


def cycled_permutation(n: int, count: int, rng: random.Random) -> list[int]:
    """``count`` indices of a pool of ``n``: whole seeded permutations, reshuffled each pass."""
    if count and n <= 0:
        raise ValueError(f"need {count} examples from an empty pool")
    out: list[int] = []
    while len(out) < count:
        perm = list(range(n))
        rng.shuffle(perm)
        out.extend(perm[: count - len(out)])
    return out


def shuffled_order(n: int, seed: int, epoch: int) -> list[int]:
    """LongCoT epoch order: each of ``n`` examples once, shuffled by (seed, epoch)."""
    order = list(range(n))
    random.Random(f"longcot/{seed}/{epoch}").shuffle(order)
    return order


def fusion_order(
    n_direct: int,
    n_cot: int,
    cot_fraction: float,
    seed: int,
    epoch: int,
    epoch_size: int | None = None,
) -> list[tuple[str, int]]:
    """One Think-Fusion epoch as ``(pool, index)`` pairs, pool being "direct" or "cot".

    ``epoch_size`` defaults to ``default_fusion_epoch_size``; a larger one repeats examples of
    the smaller pool (each pass of a pool is a fresh permutation).
    """
    size = (
        default_fusion_epoch_size(n_direct, n_cot, cot_fraction)
        if epoch_size is None
        else epoch_size
    )
    if size <= 0:
        raise ValueError(
            f"Think-Fusion epoch is empty: {n_direct} direct and {n_cot} CoT examples at "
            f"cot_fraction={cot_fraction}; add examples to the pool the ratio needs"
        )
    k = round(size * cot_fraction)
    rng = random.Random(f"fusion/{seed}/{epoch}")
    slots = cot_slots(size, k, rng.random())
    if k and not n_cot:
        raise ValueError(f"cot_fraction={cot_fraction} needs CoT examples but none were given")
    if size - k and not n_direct:
        raise ValueError(f"cot_fraction={cot_fraction} needs direct examples but none were given")
    cot_ids = iter(cycled_permutation(n_cot, k, rng))
    direct_ids = iter(cycled_permutation(n_direct, size - k, rng))
    return [(COT, next(cot_ids)) if is_cot else (DIRECT, next(direct_ids)) for is_cot in slots]
