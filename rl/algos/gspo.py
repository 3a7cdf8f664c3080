"""GSPO: one importance ratio per sequence (the report's choice for the MoE model).

s_i = exp(mean_t (logp - old_logp)) clipped to [1 - clip_low, 1 + clip_high], implemented in
its token form s_i,t = sg(s_i) * exp(logp_t - sg(logp_t)): its value is s_i and its
per-sequence token mean has exactly the gradient of the sequence objective -A_i s_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from rl.algos.aggregation import AggMode
from rl.algos.ppo_clip import check_agg_mode, check_clip
from rl.algos.ratios import clip_terms, clipped_surrogate, sequence_log_ratio
from rl.algos.unit import LossTerms

__all__ = ["Gspo"]


@dataclass(frozen=True)
class Gspo:
    """GSPO's sequence ratio with its narrow clip range (3e-4, 4e-4).

    >>> lp = torch.tensor([[-1.0, -2.0]])
    >>> Gspo().token_loss(lp, lp, torch.tensor([[2.0, 2.0]]), torch.ones(1, 2)).token_loss
    tensor([[-2., -2.]])
    """

    name: Literal["gspo"] = "gspo"
    clip_low: float = 3e-4
    clip_high: float = 4e-4
    agg_mode: AggMode = "seq-mean-token-mean"
    needs: ClassVar[frozenset[str]] = frozenset({"old_logprobs"})

    def __post_init__(self) -> None:
        check_clip("clip_low", self.clip_low)
        check_clip("clip_high", self.clip_high)
        check_agg_mode(self.agg_mode)

    def token_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> LossTerms:
        log_ratio = sequence_log_ratio(logprobs, old_logprobs, mask)
        loss = clipped_surrogate(log_ratio, advantages, self.clip_low, self.clip_high)
        metrics = clip_terms(log_ratio, advantages, mask, self.clip_low, self.clip_high)
        return LossTerms(loss, log_ratio.detach(), metrics)
