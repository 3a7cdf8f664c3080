"""Policy losses: PPO-clip with DAPO's clip-higher, GSPO's sequence ratio, and the one entry
point the learner calls, ``policy_loss``.

All inputs are (batch, seq) tensors over response positions; ``mask`` marks the tokens that
count. Losses are to be minimised (the negated clipped surrogate objective).
"""

from __future__ import annotations

import torch

from rl.algos.advantages import token_advantages
from rl.algos.aggregation import aggregate, masked_mean
from rl.algos.config import AlgoConfig
from rl.algos.kl import kl_estimate
from rl.algos.tis import rollout_mismatch, tis_weights

__all__ = ["clipped_surrogate", "policy_loss", "sequence_log_ratio", "token_log_ratio"]

# exp() of a log-ratio this large overflows; a policy this far from the sampler is broken anyway
# and the clip zeroes its gradient on the side that matters.
_MAX_LOG_RATIO = 20.0


def token_log_ratio(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """log(pi / pi_old) per token, 0 on masked-out positions (whatever padding holds there).

    >>> token_log_ratio(torch.tensor([[-1.0, -9.0]]), torch.tensor([[-1.5, 0.0]]),
    ...                 torch.tensor([[1, 0]]))
    tensor([[0.5000, 0.0000]])
    """
    diff = torch.where(mask.bool(), logprobs - old_logprobs, torch.zeros_like(logprobs))
    return diff.clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)


def sequence_log_ratio(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """GSPO's log s_i = mean over the tokens of sequence i of log(pi / pi_old), per token.

    Every token of sequence i holds the value log s_i; the gradient is GSPO-token's: the token
    sees d/d logp_t of (logp_t - sg(logp_t) + sg(log s_i)) = 1, so the token loss
    -A * s_i,t has gradient -A * s_i, and a per-sequence token mean of it reproduces the
    gradient of GSPO's sequence objective -A * s_i exactly.

        >>> lr = sequence_log_ratio(torch.tensor([[0.2, 0.4, 7.0]]), torch.zeros(1, 3),
        ...                         torch.tensor([[1, 1, 0]]))
        >>> lr  # (0.2 + 0.4) / 2 on every position
        tensor([[0.3000, 0.3000, 0.3000]])
    """
    mask = mask.bool()
    per_token = token_log_ratio(logprobs, old_logprobs, mask)
    seq = per_token.sum(dim=-1, keepdim=True) / mask.sum(dim=-1, keepdim=True).clamp(min=1)
    current = torch.where(mask, logprobs, torch.zeros_like(logprobs))
    return current - current.detach() + seq.detach()


def clipped_surrogate(
    log_ratio: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float
) -> torch.Tensor:
    """Per-token PPO-clip loss max(-A r, -A clip(r, 1 - low, 1 + high)), r = exp(log_ratio).

    With A > 0 the ratio stops paying above 1 + high; with A < 0, below 1 - low.

        >>> lr = torch.tensor([1.5, 1.5, 0.5]).log()
        >>> clipped_surrogate(lr, torch.tensor([1.0, -1.0, -1.0]), 0.2, 0.28)
        tensor([-1.2800,  1.5000,  0.8000])
    """
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(unclipped, clipped)


def _check_shapes(mask: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    for name, tensor in tensors.items():
        if tensor is not None and tensor.shape != mask.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}; expected the mask's "
                f"{tuple(mask.shape)} (batch, response tokens)"
            )


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: AlgoConfig,
    rollout_logprobs: torch.Tensor | None = None,
    ref_logprobs: torch.Tensor | None = None,
    global_token_count: int | None = None,
    global_seq_count: int | None = None,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The learner's loss for one (micro-)batch: clipped policy loss (+ KL) and its metrics.

    Args:
        logprobs: current policy's log-probabilities of the sampled tokens (with gradient).
        old_logprobs: the learner's log-probabilities before this step's updates.
        advantages: per token (batch, seq) or per sequence (batch,), broadcast over the mask.
        mask: 1 where a response token counts for the loss.
        cfg: the algorithm config (loss, clip range, aggregation, KL, TIS cap).
        rollout_logprobs: the rollout engine's sampling logprobs; with ``cfg.tis_cap`` set,
            the TIS weight min(exp(old - rollout), cap) multiplies each token's policy loss;
            mismatch metrics are reported whenever given.
        ref_logprobs: frozen reference policy's logprobs; needed when ``cfg.kl`` is set (the
            KL term, aggregated like the policy loss, is added with weight ``cfg.kl_coef``).
        global_token_count, global_seq_count: counts of the whole mini-batch (see
            ``token_and_seq_counts``) when this call sees one micro-batch of it; summing the
            micro-batch losses then gives the mini-batch loss. Default: this batch's counts.
        entropy: optional per-token entropy, reported as a masked mean.

    Returns:
        (loss, metrics). ``loss/*`` metrics are this call's share of the loss (sum them over
        micro-batches); the others are means over this call's tokens.

        >>> lp = torch.tensor([[-1.0, -1.0]], requires_grad=True)
        >>> loss, m = policy_loss(lp, lp.detach(), torch.tensor([1.0]), torch.ones(1, 2),
        ...                       AlgoConfig())
        >>> loss  # on-policy: ratio 1, loss = -A
        tensor(-1., grad_fn=<DivBackward0>)
        >>> m["clip/frac"], m["ratio/mean"]
        (0.0, 1.0)
    """
    mask = mask.bool()
    if advantages.dim() == 1:
        advantages = token_advantages(advantages, mask)
    _check_shapes(
        mask,
        logprobs=logprobs,
        old_logprobs=old_logprobs,
        advantages=advantages,
        rollout_logprobs=rollout_logprobs,
        ref_logprobs=ref_logprobs,
        entropy=entropy,
    )
    # Padding may hold anything (-inf, NaN, stale values). Zero every input there, through
    # torch.where, so no NaN reaches the forward value or leaks into gradients as NaN * 0.
    # Ratios of bf16 logprobs are too coarse near 1 for a 3e-4 clip: compute in float32.
    logprobs = logprobs.float()
    zero = torch.zeros_like(logprobs)
    logprobs = torch.where(mask, logprobs, zero)
    old_logprobs = torch.where(mask, old_logprobs.detach().float(), zero)
    advantages = torch.where(mask, advantages.detach().float(), zero)
    if rollout_logprobs is not None:
        rollout_logprobs = torch.where(mask, rollout_logprobs.detach().float(), zero)
    if ref_logprobs is not None:
        ref_logprobs = torch.where(mask, ref_logprobs.detach().float(), zero)
    low, high = cfg.clip_range
    if cfg.loss == "gspo":
        log_ratio = sequence_log_ratio(logprobs, old_logprobs, mask)
    else:
        log_ratio = token_log_ratio(logprobs, old_logprobs, mask)
    token_loss = clipped_surrogate(log_ratio, advantages, low, high)

    metrics: dict[str, float] = {}
    if rollout_logprobs is not None:
        metrics.update(rollout_mismatch(old_logprobs, rollout_logprobs, mask, cfg.tis_cap))
        if cfg.tis_cap is not None:
            weights = tis_weights(old_logprobs, rollout_logprobs, cfg.tis_cap)
            token_loss = token_loss * weights
            metrics["tis/weight_mean"] = float(masked_mean(weights, mask))

    mode = cfg.agg_mode
    pg_loss = aggregate(token_loss, mask, mode, global_token_count, global_seq_count)
    loss = pg_loss
    metrics["loss/policy"] = float(pg_loss.detach())

    if cfg.kl is not None and ref_logprobs is None:
        raise ValueError(
            f"algo.kl is {cfg.kl!r} but no ref_logprobs were given: compute the reference "
            "policy's logprobs or set algo.kl to null"
        )
    if ref_logprobs is not None:
        kl_tok = kl_estimate(logprobs, ref_logprobs, cfg.kl or "k3")
        metrics["kl/ref"] = float(masked_mean(kl_tok.detach(), mask))
        if cfg.kl is not None:
            kl_loss = aggregate(kl_tok, mask, mode, global_token_count, global_seq_count)
            loss = loss + cfg.kl_coef * kl_loss
            metrics["loss/kl"] = float(kl_loss.detach())
    metrics["loss/total"] = float(loss.detach())
    metrics.update(_ratio_metrics(log_ratio.detach(), advantages, mask, low, high))
    if entropy is not None:
        metrics["entropy"] = float(masked_mean(entropy.detach().float(), mask))
    return loss, metrics


def _ratio_metrics(
    log_ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, low: float, high: float
) -> dict[str, float]:
    """Clip fractions (where the clip binds and zeroes the gradient) and ratio statistics."""
    ratio = torch.exp(log_ratio)
    clipped_low = (ratio < 1.0 - low) & (advantages < 0)
    clipped_high = (ratio > 1.0 + high) & (advantages > 0)
    picked = ratio[mask]
    return {
        "clip/frac": float(masked_mean((clipped_low | clipped_high).float(), mask)),
        "clip/frac_low": float(masked_mean(clipped_low.float(), mask)),
        "clip/frac_high": float(masked_mean(clipped_high.float(), mask)),
        "ratio/mean": float(picked.mean()) if picked.numel() else 1.0,
        "ratio/min": float(picked.min()) if picked.numel() else 1.0,
        "ratio/max": float(picked.max()) if picked.numel() else 1.0,
        # k3 of old vs new policy: how far this update has moved from the sampling policy.
        "ratio/approx_kl": float(masked_mean(ratio - 1.0 - log_ratio, mask)),
        "tokens": float(mask.sum()),
    }
