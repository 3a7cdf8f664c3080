"""Importance ratios and the PPO clip, shared by the policy losses (pure torch).

All inputs are (batch, seq) tensors over response positions; ``mask`` marks the tokens that
count.
"""

from __future__ import annotations

import torch

from policy.metrics import Metric
from rl.algos.aggregation import token_metric

__all__ = [
    "MAX_LOG_RATIO",
    "clip_fractions",
    "clip_terms",
    "clipped_surrogate",
    "sequence_log_ratio",
    "token_log_ratio",
]

# exp() of a log-ratio this large overflows; a policy this far from the sampler is broken anyway
# and the clip zeroes its gradient on the side that matters.
MAX_LOG_RATIO = 20.0


def token_log_ratio(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """log(pi / pi_old) per token, 0 on masked-out positions (whatever padding holds there).

    >>> token_log_ratio(torch.tensor([[-1.0, -9.0]]), torch.tensor([[-1.5, 0.0]]),
    ...                 torch.tensor([[1, 0]]))
    tensor([[0.5000, 0.0000]])
    """
    diff = torch.where(mask.bool(), logprobs - old_logprobs, torch.zeros_like(logprobs))
    return diff.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)


def sequence_log_ratio(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """GSPO's log s_i = mean over the tokens of sequence i of log(pi / pi_old), per token.

    Every token of sequence i holds the value log s_i; the gradient is GSPO-token's: the token
    sees d/d logp_t of (logp_t - sg(logp_t) + sg(log s_i)) = 1, so the token loss
    -A * s_i,t has gradient -A * s_i, and a per-sequence token mean of it reproduces the
    gradient of GSPO's sequence objective -A * s_i exactly.

        >>> lr = sequence_log_ratio(torch.tensor([[0.2, 0.4, 7.0]]), torch.zeros(1, 3),
        ...                         torch.tensor([[1, 1, 0]]))
        >>> lr  # (0.2 + 0.4) / 2 on every position
        tensor([[0.3000, 0.3000, 0.3000]])
    """
    mask = mask.bool()
    per_token = token_log_ratio(logprobs, old_logprobs, mask)
    seq = per_token.sum(dim=-1, keepdim=True) / mask.sum(dim=-1, keepdim=True).clamp(min=1)
    current = torch.where(mask, logprobs, torch.zeros_like(logprobs))
    return current - current.detach() + seq.detach()


def clipped_surrogate(
    log_ratio: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float
) -> torch.Tensor:
    """Per-token PPO-clip loss max(-A r, -A clip(r, 1 - low, 1 + high)), r = exp(log_ratio).

    With A > 0 the ratio stops paying above 1 + high; with A < 0, below 1 - low.

        >>> lr = torch.tensor([1.5, 1.5, 0.5]).log()
        >>> clipped_surrogate(lr, torch.tensor([1.0, -1.0, -1.0]), 0.2, 0.28)
        tensor([-1.2800,  1.5000,  0.8000])
    """
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(unclipped, clipped)


def clip_fractions(
    log_ratio: torch.Tensor, advantages: torch.Tensor, low: float, high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the PPO clip binds and zeroes the gradient: (below 1 - low with A < 0,
    above 1 + high with A > 0), as bool tensors."""
    ratio = torch.exp(log_ratio)
    return (ratio < 1.0 - low) & (advantages < 0), (ratio > 1.0 + high) & (advantages > 0)


def clip_terms(
    log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, low: float, high: float
) -> dict[str, Metric]:
    """``clip/frac``, ``clip/frac_low``, ``clip/frac_high`` as token means."""
    below, above = clip_fractions(log_ratio.detach(), advantages, low, high)
    return {
        "clip/frac": token_metric((below | above).float(), mask),
        "clip/frac_low": token_metric(below.float(), mask),
        "clip/frac_high": token_metric(above.float(), mask),
    }
