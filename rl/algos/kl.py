"""Per-token estimators of KL(policy || reference) from log-probabilities of sampled tokens,
and the KL-in-reward penalty.

With tokens sampled from the policy and log r = ref_logp - logp (Schulman, "Approximating KL
divergence"):

- k1 = -log r: unbiased, but single samples can be negative.
- k2 = (log r)^2 / 2: biased, low variance; its gradient is that of the reverse KL.
- k3 = r - 1 - log r: unbiased and never negative (log x <= x - 1). As in the field (verl's
  ``low_var_kl``), log r is clamped to [-20, 20] before exp and k3 to at most 10, so a token
  the reference finds (nearly) impossible cannot dominate the loss or overflow.
"""

from __future__ import annotations

import torch

__all__ = ["K3_MAX", "kl_estimate", "kl_reward_to_go"]

# exp() of a log-ratio this large overflows float32 into inf.
_MAX_LOG_RATIO = 20.0
K3_MAX = 10.0


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL estimate (same shape as ``logprobs``); differentiable in ``logprobs``.

    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-2.0]), "k1")  # -1 - (-2)
    tensor([1.])
    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-2.0]), "k2")  # 1^2 / 2
    tensor([0.5000])
    >>> kl_estimate(torch.tensor([-1.0]), torch.tensor([-1.0]), "k3")  # r = 1
    tensor([0.])
    >>> kl_estimate(torch.tensor([-30.0]), torch.tensor([-1.0]), "k3")  # clamped
    tensor([10.])
    """
    log_ratio = (ref_logprobs - logprobs).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.square()
    if estimator == "k3":
        # expm1 keeps precision near r = 1, where exp(x) - 1 - x cancels; the lower clamp
        # removes the last-bit rounding that could still make a true zero slightly negative.
        return (torch.expm1(log_ratio) - log_ratio).clamp(min=0.0, max=K3_MAX)
    raise ValueError(f"kl: {estimator!r} is unknown; choose 'k1', 'k2' or 'k3'")


def kl_reward_to_go(kl_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL as a per-token reward penalty: each response token's return of the penalty, the sum
    of the (detached) KL estimates from that token to the end of its sequence.

    Subtracting ``coef * kl_reward_to_go`` from the advantage is REINFORCE with per-token
    rewards -coef * kl_t (undiscounted, no baseline for the penalty): with k1 its expected
    gradient is that of -coef * KL(policy || reference) of the whole response.

        >>> kl_reward_to_go(torch.tensor([[1.0, 2.0, 4.0, 9.0]]), torch.tensor([[0, 1, 1, 0]]))
        tensor([[0., 6., 4., 0.]])
    """
    mask = mask.bool()
    picked = torch.where(mask, kl_tokens.detach(), torch.zeros_like(kl_tokens))
    to_go = picked.flip(-1).cumsum(-1).flip(-1)
    return torch.where(mask, to_go, torch.zeros_like(to_go))
