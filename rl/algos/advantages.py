"""Group-relative advantages (GRPO, Dr.GRPO) and their broadcast to response tokens.

Rewards come flat, groups contiguous: the ``n`` samples of one prompt sit next to each other,
so ``rewards.view(-1, n)`` has one row per prompt.
"""

from __future__ import annotations

import torch

__all__ = ["group_advantages", "token_advantages"]


def group_advantages(
    rewards: torch.Tensor, group_size: int, estimator: str = "grpo", eps: float = 1e-6
) -> torch.Tensor:
    """One advantage per sample from the rewards of its group.

    - ``grpo``: (r - mean) / (std + eps), std with Bessel's correction (n - 1).
    - ``drgrpo``: r - mean (Dr.GRPO drops the std, which over-weights easy and hard prompts).

    A group whose rewards are all equal gets exactly zero (no NaN, no eps-sized noise), and so
    does a group of one sample.

        >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4)
        tensor([ 1.5000, -0.5000, -0.5000, -0.5000])
        >>> group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, "drgrpo")
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
    if estimator not in ("grpo", "drgrpo"):
        raise ValueError(f"advantage: {estimator!r} is unknown; choose 'grpo' or 'drgrpo'")
    grouped = rewards.float().view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if estimator == "grpo" and group_size > 1:
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    # Equal rewards carry no signal; the mean of equal floats can differ from them in the last
    # bit, which /eps would blow up, so such groups are set to zero outright.
    flat = (grouped.amax(dim=1) == grouped.amin(dim=1)).unsqueeze(1)
    return torch.where(flat, torch.zeros_like(centred), centred).view(-1)


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
