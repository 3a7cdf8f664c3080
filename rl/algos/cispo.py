"""CISPO (MiniMax-M1, arXiv 2506.13585): clip the importance-sampling weight, not the update.

Per token, with r = exp(logp - old_logp):

    loss_t = -sg(clip(r, 1 - clip_low, 1 + clip_high)) * A * logp_t

so every token keeps a gradient (PPO's clip zeroes it once r leaves the range; the rare
"fork" tokens of long reasoning are the ones it drops); the weight only bounds its size. The
gradient is clip(r) * A * grad logp_t = A * grad r_t where the clip does not bind (the
REINFORCE form of the PPO surrogate). MiniMax-M1 sets no lower bound (``clip_low: 1.0``, the
weight stays >= 0) and tunes only ``clip_high``; the paper averages over all tokens of the
batch (``token-mean``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from rl.algos.aggregation import AggMode, token_metric
from rl.algos.ppo_clip import check_agg_mode
from rl.algos.ratios import token_log_ratio
from rl.algos.unit import LossTerms
from rl.config import check

__all__ = ["Cispo"]


@dataclass(frozen=True)
class Cispo:
    """CISPO's clipped, detached IS weight times the REINFORCE term.

    >>> lp = torch.tensor([[-1.0, -2.0]])
    >>> Cispo().token_loss(lp, lp, torch.tensor([[1.0, 1.0]]), torch.ones(1, 2)).token_loss
    tensor([[1., 2.]])
    """

    name: Literal["cispo"] = "cispo"
    clip_low: float = 1.0  # weight >= 1 - clip_low; 1.0 = no lower bound (MiniMax-M1)
    clip_high: float = 0.28  # weight <= 1 + clip_high
    agg_mode: AggMode = "token-mean"
    needs: ClassVar[frozenset[str]] = frozenset({"old_logprobs"})

    def __post_init__(self) -> None:
        check(0 < self.clip_low <= 1, "clip_low", f"must be in (0, 1], got {self.clip_low}")
        check(self.clip_high > 0, "clip_high", f"must be > 0, got {self.clip_high}")
        check_agg_mode(self.agg_mode)

    def token_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> LossTerms:
        log_ratio = token_log_ratio(logprobs, old_logprobs, mask).detach()
        ratio = torch.exp(log_ratio)
        weight = ratio.clamp(1.0 - self.clip_low, 1.0 + self.clip_high)
        current = torch.where(mask.bool(), logprobs, torch.zeros_like(logprobs))
        loss = -weight * advantages * current
        low = ratio < 1.0 - self.clip_low
        high = ratio > 1.0 + self.clip_high
        metrics = {
            "clip/frac": token_metric((low | high).float(), mask),
            "clip/frac_low": token_metric(low.float(), mask),
            "clip/frac_high": token_metric(high.float(), mask),
        }
        return LossTerms(loss, log_ratio, metrics)
