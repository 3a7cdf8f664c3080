"""PPO-clip policy losses: DAPO (clip-higher, the SAIL-VL2 report's choice for dense models)
and symmetric PPO.

    >>> lp = torch.tensor([[-1.0, -1.0]])
    >>> terms = Dapo().token_loss(lp, lp, torch.tensor([[1.0, -1.0]]), torch.ones(1, 2))
    >>> terms.token_loss  # on-policy: ratio 1, loss -A
    tensor([[-1.,  1.]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from rl.algos.aggregation import MODES, AggMode
from rl.algos.ratios import clip_terms, clipped_surrogate, token_log_ratio
from rl.algos.unit import LossTerms
from rl.config import check

__all__ = ["Dapo", "Ppo", "check_agg_mode", "check_clip"]


def check_clip(name: str, value: float) -> None:
    check(0 < value < 1, name, f"must be in (0, 1), got {value}")


def check_agg_mode(mode: str) -> None:
    check(mode in MODES, "agg_mode", f"{mode!r}; choose one of {', '.join(MODES)}")


@dataclass(frozen=True)
class Dapo:
    """Per-token ratio r, loss max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high)): clip-higher
    lets rare tokens with A > 0 grow to 1.28 while A < 0 stops at 0.80."""

    name: Literal["dapo"] = "dapo"
    clip_low: float = 0.20
    clip_high: float = 0.28
    agg_mode: AggMode = "token-mean"
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
        log_ratio = token_log_ratio(logprobs, old_logprobs, mask)
        loss = clipped_surrogate(log_ratio, advantages, self.clip_low, self.clip_high)
        metrics = clip_terms(log_ratio, advantages, mask, self.clip_low, self.clip_high)
        return LossTerms(loss, log_ratio.detach(), metrics)


@dataclass(frozen=True)
class Ppo:
    """Symmetric PPO-clip: the ratio kept in [1 - clip, 1 + clip]."""

    name: Literal["ppo"] = "ppo"
    clip: float = 0.20
    agg_mode: AggMode = "token-mean"
    needs: ClassVar[frozenset[str]] = frozenset({"old_logprobs"})

    def __post_init__(self) -> None:
        check_clip("clip", self.clip)
        check_agg_mode(self.agg_mode)

    def token_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> LossTerms:
        log_ratio = token_log_ratio(logprobs, old_logprobs, mask)
        loss = clipped_surrogate(log_ratio, advantages, self.clip, self.clip)
        metrics = clip_terms(log_ratio, advantages, mask, self.clip, self.clip)
        return LossTerms(loss, log_ratio.detach(), metrics)
