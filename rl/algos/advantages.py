"""Group-relative advantages (GRPO, Dr.GRPO) as registered units, and their broadcast to
response tokens.

Rewards come flat, groups contiguous: the ``n`` samples of one prompt sit next to each other,
so ``rewards.view(-1, n)`` has one row per prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from rl.config import check

__all__ = ["DrGrpo", "Grpo", "group_advantages", "token_advantages"]


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """One advantage per sample from the rewards of its group: r - mean, divided by
    (std + eps) when ``std`` (std with Bessel's correction, n - 1).

    A group whose rewards are all equal gets exactly zero (no NaN, no eps-sized noise), and so
    does a group of one sample.

        >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4)
        tensor([ 1.5000, -0.5000, -0.5000, -0.5000])
        >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, std=False)
        tensor([ 0.7500, -0.2500, -0.2500, -0.2500])
        >>> group_advantages(torch.tensor([0.3, 0.3, 2.0, 2.0]), 2)
        tensor([0., 0., 0., 0.])
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must be flat with a multiple of group_size={group_size} entries, "
            f"got shape {tuple(rewards.shape)}"
        )
    grouped = rewards.float().view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if std and group_size > 1:
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    # Equal rewards carry no signal; the mean of equal floats can differ from them in the last
    # bit, which /eps would blow up, so such groups are set to zero outright.
    flat = (grouped.amax(dim=1) == grouped.amin(dim=1)).unsqueeze(1)
    return torch.where(flat, torch.zeros_like(centred), centred).view(-1)


@dataclass(frozen=True)
class Grpo:
    """GRPO: (r - mean) / (std + eps) within each group.

    >>> Grpo().compute(torch.tensor([1.0, 0.0]), 2)
    tensor([ 0.7071, -0.7071])
    """

    name: Literal["grpo"] = "grpo"
    eps: float = 1e-6  # added to the group std before dividing
    needs: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")

    def compute(self, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
        return group_advantages(rewards, group_size, std=True, eps=self.eps)


@dataclass(frozen=True)
class DrGrpo:
    """Dr.GRPO: r - mean (no std division, which over-weights easy and hard prompts).

    >>> DrGrpo().compute(torch.tensor([1.0, 0.0]), 2)
    tensor([ 0.5000, -0.5000])
    """

    name: Literal["drgrpo"] = "drgrpo"
    needs: ClassVar[frozenset[str]] = frozenset()

    def compute(self, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
        return group_advantages(rewards, group_size, std=False)


def token_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Broadcast per-sequence advantages (batch,) over a (batch, seq) response mask.

    >>> token_advantages(torch.tensor([2.0, -1.0]), torch.tensor([[1, 1, 0], [1, 0, 0]]))
    tensor([[ 2.,  2.,  0.],
            [-1.,  0.,  0.]])
    """
    if advantages.dim() != 1 or advantages.shape[0] != mask.shape[0]:
        raise ValueError(
            f"advantages {tuple(advantages.shape)} must be (batch,) with batch = mask rows "
            f"{mask.shape[0]}"
        )
    column = advantages.unsqueeze(1).expand(mask.shape)
    return torch.where(mask.bool(), column, torch.zeros_like(column))
