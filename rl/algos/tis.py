"""Truncated importance sampling (TIS) between the rollout engine and the learner.

vLLM samples with its own kernels and precision, so its logprobs of a token differ from the
learner's recomputed "old" logprobs of the same weights. TIS re-weights each token's policy
loss by w = min(exp(old_logp - rollout_logp), cap), detached, so the update stays an unbiased
(up to the cap) estimate for the learner's policy. The mismatch metrics show how far the two
engines drift apart.
"""

from __future__ import annotations

import torch

from policy.metrics import Metric
from rl.algos.aggregation import token_metric

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
) -> dict[str, Metric]:
    """Mismatch metrics over masked tokens: mean and max |old - rollout|, mean ratio
    exp(old - rollout) before capping, and (with a cap) the fraction of tokens capped.

        >>> m = rollout_mismatch(torch.tensor([[-1.0, -1.0]]), torch.tensor([[-1.5, -1.0]]),
        ...                      torch.tensor([[1, 1]]))
        >>> round(m["mismatch/abs_diff_mean"].value, 4), m["mismatch/abs_diff_max"].value
        (0.25, 0.5)
    """
    mask = mask.bool()
    diff = (old_logprobs - rollout_logprobs).detach().float()
    abs_diff = diff.abs()
    ratio = torch.exp(diff.clamp(max=_MAX_LOG_RATIO))
    picked = abs_diff[mask]
    n = int(mask.sum())
    out = {
        "mismatch/abs_diff_mean": token_metric(abs_diff, mask),
        "mismatch/abs_diff_max": Metric.max(float(picked.max()) if n else 0.0, n),
        "mismatch/ratio_mean": token_metric(ratio, mask),
    }
    if cap is not None:
        out["tis/capped_frac"] = token_metric((ratio > cap).float(), mask)
    return out
