"""SAPO (soft adaptive policy optimisation, arXiv 2511.20347): a smooth gate instead of the
hard clip.

Per token, with r = exp(logp - old_logp) and tau = tau_pos where A > 0, tau_neg where A < 0:

    f(r) = sigmoid(tau * (r - 1)) * 4 / tau,        loss_t = -f(r_t) * A

d f / d logp = 4 sigmoid(x) (1 - sigmoid(x)) * r with x = tau (r - 1): exactly r (the plain
policy gradient) at r = 1, decaying smoothly as the token drifts off-policy, faster for larger
tau. tau_neg > tau_pos damps negative-advantage updates (which raise many unsampled tokens)
sooner; the paper's defaults are 1.0 and 1.05, and its objective averages each sequence's
tokens, then sequences (``seq-mean-token-mean``).
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

__all__ = ["Sapo"]


@dataclass(frozen=True)
class Sapo:
    """SAPO's temperature-controlled sigmoid gate.

    >>> lp = torch.tensor([[-1.0]])
    >>> Sapo().token_loss(lp, lp, torch.tensor([[1.0]]), torch.ones(1, 1)).token_loss  # -2 A
    tensor([[-2.]])
    """

    name: Literal["sapo"] = "sapo"
    tau_pos: float = 1.0
    tau_neg: float = 1.05
    agg_mode: AggMode = "seq-mean-token-mean"
    needs: ClassVar[frozenset[str]] = frozenset({"old_logprobs"})

    def __post_init__(self) -> None:
        check(self.tau_pos > 0, "tau_pos", f"must be > 0, got {self.tau_pos}")
        check(self.tau_neg > 0, "tau_neg", f"must be > 0, got {self.tau_neg}")
        check_agg_mode(self.agg_mode)

    def token_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> LossTerms:
        log_ratio = token_log_ratio(logprobs, old_logprobs, mask)
        ratio = torch.exp(log_ratio)
        tau = torch.where(advantages > 0, self.tau_pos, self.tau_neg).to(ratio.dtype)
        gate = torch.sigmoid(tau * (ratio - 1.0))
        loss = -(gate * 4.0 / tau) * advantages
        # the factor the gate puts on the plain policy gradient r * grad logp (1 on-policy)
        slope = (4.0 * gate * (1.0 - gate)).detach()
        metrics = {"sapo/gate_slope": token_metric(slope, mask)}
        return LossTerms(loss, log_ratio.detach(), metrics)
