"""Truncated importance sampling (TIS) between the rollout engine and the learner.

vLLM samples with its own kernels and precision, so its logprobs of a token differ from the
learner's recomputed "old" logprobs of the same weights. TIS re-weights each token's policy
loss by w = min(exp(old_logp - rollout_logp), cap), detached, so the update stays an unbiased
(up to the cap) estimate for the learner's policy. The mismatch metrics show how far the two
engines drift apart.
"""

from __future__ import annotations

import torch

from rl.algos.aggregation import masked_mean

__all__ = ["rollout_mismatch", "tis_weights"]

_MAX_LOG_RATIO = 20.0  # keeps exp() finite on garbage (padding) positions


def tis_weights(
    old_logprobs: torch.Tensor, rollout_logprobs: torch.Tensor, cap: float
) -> torch.Tensor:
    """Per-token weight min(exp(old - rollout), cap), carrying no gradient.

    >>> tis_weights(torch.tensor([-1.0, -1.0, 0.0]), torch.tensor([-1.0, -2.0, -5.0]), 2.0)
    tensor([1., 2., 2.])
    """
    log_ratio = (old_logprobs - rollout_logprobs).detach().clamp(max=_MAX_LOG_RATIO)
    return torch.exp(log_ratio).clamp(max=cap)


def rollout_mismatch(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    mask: torch.Tensor,
    cap: float | None = None,
) -> dict[str, float]:
    """Mismatch metrics over masked tokens: mean and max |old - rollout|, mean ratio
    exp(old - rollout) before capping, and (with a cap) the fraction of tokens capped.

        >>> m = rollout_mismatch(torch.tensor([[-1.0, -1.0]]), torch.tensor([[-1.5, -1.0]]),
        ...                      torch.tensor([[1, 1]]))
        >>> round(m["mismatch/abs_diff_mean"], 4), m["mismatch/abs_diff_max"]
        (0.25, 0.5)
    """
    mask = mask.bool()
    diff = (old_logprobs - rollout_logprobs).detach().float()
    abs_diff = diff.abs()
    ratio = torch.exp(diff.clamp(max=_MAX_LOG_RATIO))
    picked = abs_diff[mask]
    out = {
        "mismatch/abs_diff_mean": float(masked_mean(abs_diff, mask)),
        "mismatch/abs_diff_max": float(picked.max()) if picked.numel() else 0.0,
        "mismatch/ratio_mean": float(masked_mean(ratio, mask)) if mask.any() else 1.0,
    }
    if cap is not None:
        out["tis/capped_frac"] = float(masked_mean((ratio > cap).float(), mask))
    return out
