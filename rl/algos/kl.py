"""Per-token estimators of KL(policy || reference) from log-probabilities of sampled tokens.

With tokens sampled from the policy and log r = ref_logp - logp (Schulman, "Approximating KL
divergence"):

- k1 = -log r: unbiased, but single samples can be negative.
- k2 = (log r)^2 / 2: biased, low variance; its gradient is that of the reverse KL.
- k3 = r - 1 - log r: unbiased and never negative (log x <= x - 1).
"""

from __future__ import annotations

import torch

__all__ = ["kl_estimate"]

# exp() of a log-ratio this large overflows float32 into inf; clamping first keeps k3 finite
# for tokens the reference finds (nearly) impossible.
_MAX_LOG_RATIO = 20.0


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL estimate (same shape as ``logprobs``); differentiable in ``logprobs``.

    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-2.0]), "k1")  # -1 - (-2)
    tensor([1.])
    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-2.0]), "k2")  # 1^2 / 2
    tensor([0.5000])
    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-1.0]), "k3")  # r = 1
    tensor([0.])
    """
    log_ratio = (ref_logprobs - logprobs).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.square()
    if estimator == "k3":
        # expm1 keeps precision near r = 1, where exp(x) - 1 - x cancels; the clamp removes
        # the last-bit rounding that could still make a true zero slightly negative.
        return (torch.expm1(log_ratio) - log_ratio).clamp(min=0.0)
    raise ValueError(f"kl: {estimator!r} is unknown; choose 'k1', 'k2' or 'k3'")
