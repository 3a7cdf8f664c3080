"""The SFT loss: token-mean negative log-likelihood over the loss-masked tokens of a
mini-batch, written for the learner's ``loss_fn(mb) -> (loss, metrics)`` seam.

``mb`` is a ``policy.batch.LossInputs``: (B, T) ``logprobs`` and ``loss_mask`` plus
``global_token_count`` (loss tokens of the whole mini-batch over all ranks). Dividing each
micro-batch's sum by the global count makes the summed micro-batch losses the exact token
mean of the mini-batch, however it was split or packed.

Metrics are sums that the learner adds up over micro-batches and ranks: ``nll_think_sum`` /
``tokens_think`` and ``nll_direct_sum`` / ``tokens_direct`` give the loss of each mode when
the batch carries the per-token extra ``think`` (1.0 on tokens of think-mode samples).
"""

from __future__ import annotations

from typing import Any

import torch


def nll_loss(mb: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-mean NLL of ``mb`` (a LossInputs) and per-mode sums."""
    mask = mb.loss_mask.to(mb.logprobs.dtype)
    nll = -mb.logprobs * mask
    loss = nll.sum() / max(1, int(mb.global_token_count))
    metrics: dict[str, float] = {}
    think = mb.extras.get("think")
    if think is not None:
        with torch.no_grad():
            think = think.to(nll.dtype)
            metrics["nll_think_sum"] = float((nll * think).sum())
            metrics["tokens_think"] = float((mask * think).sum())
            metrics["nll_direct_sum"] = float((nll * (1 - think)).sum())
            metrics["tokens_direct"] = float((mask * (1 - think)).sum())
    return loss, metrics
