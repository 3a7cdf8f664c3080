"""The one entry point the learner's RL loss calls, ``policy_loss``: the configured loss unit
(``cfg.loss``, see ``rl.algos.registry``), TIS, KL to the reference, aggregation and metrics.

All inputs are (batch, seq) tensors over response positions; ``mask`` marks the tokens that
count. Losses are to be minimised. Metrics are ``policy.metrics.Metric`` values that carry
their reduction, so the learner can reduce them over micro-batches and ranks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from policy.metrics import Metric
from rl.algos.advantages import token_advantages
from rl.algos.aggregation import aggregate, token_metric
from rl.algos.kl import kl_estimate, kl_reward_to_go
from rl.algos.ratios import clipped_surrogate, sequence_log_ratio, token_log_ratio
from rl.algos.tis import rollout_mismatch, tis_weights

if TYPE_CHECKING:
    from rl.algos.config import AlgoConfig

__all__ = ["clipped_surrogate", "policy_loss", "sequence_log_ratio", "token_log_ratio"]


def _check_shapes(mask: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    for name, tensor in tensors.items():
        if tensor is not None and tensor.shape != mask.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}; expected the mask's "
                f"{tuple(mask.shape)} (batch, response tokens)"
            )


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: AlgoConfig,
    rollout_logprobs: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    global_token_count: int | None = None,
    global_seq_count: int | None = None,
) -> tuple[torch.Tensor, dict[str, Metric]]:
    """The learner's loss for one (micro-)batch: policy loss (+ KL) and its metrics.

    Args:
        logprobs: current policy's log-probabilities of the sampled tokens (with gradient).
        old_logprobs: the learner's log-probabilities before this step's updates (every
            registered loss needs them).
        advantages: per token (batch, seq) or per sequence (batch,), broadcast over the mask.
        mask: 1 where a response token counts for the loss.
        cfg: the algorithm config (loss unit, KL, TIS cap).
        rollout_logprobs: the rollout engine's sampling logprobs; with ``cfg.tis_cap`` set,
            the TIS weight min(exp(old - rollout), cap) multiplies each token's policy loss;
            mismatch metrics are reported whenever given.
        ref_logprobs: frozen reference policy's logprobs; needed when ``cfg.kl`` is set.
        global_token_count, global_seq_count: counts of the whole mini-batch (see
            ``token_and_seq_counts``) when this call sees one micro-batch of it; summing the
            micro-batch losses then gives the mini-batch loss. Default: this batch's counts.

    Returns:
        (loss, metrics). ``loss/*`` are ``sum`` metrics (this call's share of the loss); the
        others token means or min/max over this call's tokens.

        >>> from rl.algos.config import AlgoConfig
        >>> lp = torch.tensor([[-1.0, -1.0]], requires_grad=True)
        >>> loss, m = policy_loss(lp, lp.detach(), torch.tensor([1.0]), torch.ones(1, 2),
        ...                       AlgoConfig())
        >>> loss  # on-policy: ratio 1, loss = -A
        tensor(-1., grad_fn=<DivBackward0>)
        >>> m["clip/frac"].value, m["ratio/mean"]
        (0.0, Metric(value=1.0, reduce='token_mean', weight=2.0))
    """
    mask = mask.bool()
    if advantages.dim() == 1:
        advantages = token_advantages(advantages, mask)
    unit = cfg.loss
    if "old_logprobs" in unit.needs and old_logprobs is None:
        raise ValueError(f"loss {unit.name!r} needs old_logprobs")
    _check_shapes(
        mask,
        logprobs=logprobs,
        old_logprobs=old_logprobs,
        advantages=advantages,
        rollout_logprobs=rollout_logprobs,
        ref_logprobs=ref_logprobs,
    )
    # Padding may hold anything (-inf, NaN, stale values). Zero every input there, through
    # torch.where, so no NaN reaches the forward value or leaks into gradients as NaN * 0.
    # Ratios of bf16 logprobs are too coarse near 1 for a 3e-4 clip: compute in float32.
    logprobs = logprobs.float()
    zero = torch.zeros_like(logprobs)

    def clean(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else torch.where(mask, t.detach().float(), zero)

    logprobs = torch.where(mask, logprobs, zero)
    old_logprobs, advantages = clean(old_logprobs), clean(advantages)
    rollout_logprobs, ref_logprobs = clean(rollout_logprobs), clean(ref_logprobs)
    if cfg.kl is not None and ref_logprobs is None:
        raise ValueError(
            f"algo.kl is {cfg.kl!r} but no ref_logprobs were given: compute the reference "
            "policy's logprobs or set algo.kl to null"
        )
    metrics: dict[str, Metric] = {}
    if cfg.kl_in_reward:
        # The penalty is a reward of the sampled response under the sampling-time policy.
        penalty = cfg.kl_weight * kl_reward_to_go(
            kl_estimate(old_logprobs, ref_logprobs, cfg.kl), mask
        )
        advantages = advantages - penalty
        metrics["kl/reward_penalty"] = token_metric(penalty, mask)
    terms = unit.token_loss(logprobs, old_logprobs, advantages, mask)
    token_loss = terms.token_loss
    metrics.update(terms.metrics)
    if rollout_logprobs is not None:
        base = old_logprobs if old_logprobs is not None else logprobs.detach()
        metrics.update(rollout_mismatch(base, rollout_logprobs, mask, cfg.tis_cap))
        if cfg.tis_cap is not None:
            weights = tis_weights(base, rollout_logprobs, cfg.tis_cap)
            token_loss = token_loss * weights
            metrics["tis/weight_mean"] = token_metric(weights, mask)

    mode = unit.agg_mode
    pg_loss = aggregate(token_loss, mask, mode, global_token_count, global_seq_count)
    loss = pg_loss
    metrics["loss/policy"] = Metric.sum(float(pg_loss.detach()))
    if ref_logprobs is not None:
        kl_tok = kl_estimate(logprobs, ref_logprobs, cfg.kl or "k3")
        metrics["kl/ref"] = token_metric(kl_tok, mask)
        if cfg.kl is not None and not cfg.kl_in_reward:
            kl_loss = aggregate(kl_tok, mask, mode, global_token_count, global_seq_count)
            loss = loss + cfg.kl_weight * kl_loss
            metrics["loss/kl"] = Metric.sum(float(kl_loss.detach()))
    metrics["loss/total"] = Metric.sum(float(loss.detach()))
    metrics.update(ratio_metrics(terms.log_ratio, mask))
    return loss, metrics


def ratio_metrics(log_ratio: torch.Tensor, mask: torch.Tensor) -> dict[str, Metric]:
    """Statistics of the ratio pi / pi_old the loss used: how far this update has moved."""
    mask = mask.bool()
    ratio = torch.exp(log_ratio.detach())
    picked = ratio[mask]
    n = int(mask.sum())
    return {
        "ratio/mean": token_metric(ratio, mask),
        "ratio/min": Metric.min(float(picked.min()) if n else 1.0, n),
        "ratio/max": Metric.max(float(picked.max()) if n else 1.0, n),
        # k3 of old vs new policy
        "ratio/approx_kl": token_metric(ratio - 1.0 - log_ratio.detach(), mask),
    }
