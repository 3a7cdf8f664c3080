"""Entropy of the policy's next-token distribution, a health metric of RL training.

A collapsing entropy is the early sign DAPO's clip-higher was made against.
"""

from __future__ import annotations

import torch

__all__ = ["entropy_from_logits"]


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy H = logsumexp(z) - sum softmax(z) * z over the last dim.

    (batch, seq, vocab) -> (batch, seq). Average it with ``masked_mean`` over the response.

        >>> entropy_from_logits(torch.zeros(1, 4))  # uniform over 4: log 4
        tensor([1.3863])
        >>> entropy_from_logits(torch.tensor([[0.0, -1e4]]))  # (nearly) certain
        tensor([0.])
    """
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)
