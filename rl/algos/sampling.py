"""DAPO's sampling-side rules: dynamic sampling (drop groups with equal rewards and refill the
batch, within a bounded number of extra rounds) and overlong handling (soft length penalty,
masking of truncated samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

__all__ = ["BatchFiller", "FillReport", "informative_groups", "mask_truncated", "overlong_penalty"]

T = TypeVar("T")


def informative_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Bool per group: True where the group's rewards are not all equal.

    A group of equal rewards has zero group-relative advantage and so no gradient; DAPO drops
    it instead of letting it shrink the batch's effective size. Rewards are flat with groups
    contiguous (as in ``group_advantages``).

        >>> informative_groups(torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0]), 3)
        tensor([False,  True])
    """
    if group_size < 1 or rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must be flat with a multiple of group_size={group_size} entries, "
            f"got shape {tuple(rewards.shape)}"
        )
    grouped = rewards.view(-1, group_size)
    return grouped.amax(dim=1) != grouped.amin(dim=1)


def overlong_penalty(
    lengths: torch.Tensor, max_len: int, buffer: int, penalty: float = 1.0
) -> torch.Tensor:
    """DAPO's soft overlong punishment, to add to each sample's reward.

    With L = ``max_len`` and B = ``buffer``: 0 for length <= L - B, falling linearly to
    -``penalty`` at L, and -``penalty`` beyond. ``buffer`` 0 switches it off (all zeros).

        >>> overlong_penalty(torch.tensor([10, 12, 14, 16, 20]), max_len=16, buffer=4)
        tensor([ 0.0000,  0.0000, -0.5000, -1.0000, -1.0000])
    """
    if buffer < 0 or buffer > max_len:
        raise ValueError(f"overlong_buffer must be in [0, max_len={max_len}], got {buffer}")
    lengths = torch.as_tensor(lengths, dtype=torch.float32)
    if buffer == 0:
        return torch.zeros_like(lengths)
    over = (lengths - (max_len - buffer)) / buffer
    # 0 - x rather than -x: no negative zeros in logs for samples inside the budget.
    return 0.0 - penalty * over.clamp(0.0, 1.0)


def mask_truncated(mask: torch.Tensor, finish_reasons: Sequence[str]) -> torch.Tensor:
    """Zero the loss-mask rows of samples that stopped at the length limit (``"length"``).

    A truncated answer is not wrong, only unfinished; punishing it as wrong teaches the policy
    to answer short rather than to answer right (DAPO's overlong filtering).

        >>> mask_truncated(torch.ones(2, 3), ["stop", "length"])
        tensor([[1., 1., 1.],
                [0., 0., 0.]])
    """
    if len(finish_reasons) != mask.shape[0]:
        raise ValueError(f"{len(finish_reasons)} finish reasons for a mask of {mask.shape[0]} rows")
    keep = torch.tensor([reason != "length" for reason in finish_reasons], device=mask.device)
    return mask * keep.unsqueeze(1).to(mask.dtype)


@dataclass(frozen=True)
class FillReport(Generic[T]):
    """What dynamic sampling gathered: the kept groups (at most the target) and its cost."""

    groups: tuple[T, ...]
    rounds: int  # generation rounds used, the first included
    dropped: int  # groups dropped for equal rewards
    surplus: int  # informative groups beyond the target, discarded
    full: bool  # False when the extra rounds ran out before the batch filled

    @property
    def extra_rounds(self) -> int:
        return max(self.rounds - 1, 0)


class BatchFiller(Generic[T]):
    """Accumulates informative groups over generation rounds until the batch is full.

    The driver's loop::

        filler = BatchFiller(target_groups, group_size, cfg.max_extra_rounds, cfg.dynamic_sampling)
        while filler.wants_more():
            groups, rewards = generate_and_score(filler.missing)
            filler.add(groups, rewards)
        report = filler.finish()

    With ``filter_groups`` False every group is kept and one round is taken.

        >>> f = BatchFiller(target_groups=2, group_size=2, max_extra_rounds=1)
        >>> f.add(["a", "b"], torch.tensor([1.0, 1.0, 0.0, 1.0]))  # "a" is all 1: dropped
        >>> f.wants_more(), f.missing
        (True, 1)
        >>> f.add(["c", "d"], torch.tensor([0.0, 1.0, 1.0, 0.0]))
        >>> r = f.finish()
        >>> r.groups, r.rounds, r.dropped, r.surplus, r.full
        (('b', 'c'), 2, 1, 1, True)
    """

    def __init__(
        self,
        target_groups: int,
        group_size: int,
        max_extra_rounds: int,
        filter_groups: bool = True,
    ):
        if target_groups < 1:
            raise ValueError(f"target_groups must be >= 1, got {target_groups}")
        if max_extra_rounds < 0:
            raise ValueError(f"max_extra_rounds must be >= 0, got {max_extra_rounds}")
        self.target_groups = target_groups
        self.group_size = group_size
        self.max_extra_rounds = max_extra_rounds
        self.filter_groups = filter_groups
        self._kept: list[T] = []
        self.rounds = 0
        self.dropped = 0

    @property
    def missing(self) -> int:
        """Groups still needed to fill the batch."""
        return max(self.target_groups - len(self._kept), 0)

    def wants_more(self) -> bool:
        """True while another generation round is needed and allowed."""
        if self.rounds == 0:
            return True
        if not self.filter_groups or self.missing == 0:
            return False
        return self.rounds - 1 < self.max_extra_rounds

    def add(self, groups: Sequence[T], rewards: torch.Tensor) -> None:
        """Take one round: ``groups`` and their flat rewards (len(groups) * group_size)."""
        if not self.wants_more():
            raise RuntimeError("the batch is complete or out of extra rounds; call finish()")
        if rewards.numel() != len(groups) * self.group_size:
            raise ValueError(
                f"{rewards.numel()} rewards for {len(groups)} groups of {self.group_size}"
            )
        self.rounds += 1
        if self.filter_groups:
            keep = informative_groups(rewards, self.group_size).tolist()
        else:
            keep = [True] * len(groups)
        self._kept.extend(group for group, ok in zip(groups, keep) if ok)
        self.dropped += len(groups) - sum(keep)

    def finish(self) -> FillReport[T]:
        """The batch: the first ``target_groups`` kept groups, with the accounting."""
        kept = self._kept[: self.target_groups]
        return FillReport(
            groups=tuple(kept),
            rounds=self.rounds,
            dropped=self.dropped,
            surplus=len(self._kept) - len(kept),
            full=len(kept) == self.target_groups,
        )
