"""Masked reductions: turn per-token values into one number the way the chosen loss asks.

Global counts make micro-batching exact: a caller that splits a mini-batch into micro-batches
passes the mini-batch's token (or sequence) count to every micro-batch and sums the results,
which equals the loss of the whole mini-batch, gradients included. With data parallelism that
averages gradients over W ranks, pass the count of this rank's mini-batch (the average over
ranks then matches a loss over the global batch when ranks hold equal counts).
"""

from __future__ import annotations

from typing import Literal

import torch

from policy.metrics import Metric

__all__ = ["MODES", "AggMode", "aggregate", "masked_mean", "token_and_seq_counts", "token_metric"]

AggMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]
MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is set (0 when nothing is set).

    Masked-out entries may hold anything, inf or NaN included (padding): they are selected
    away, not multiplied by zero.

        >>> masked_mean(torch.tensor([[1.0, 3.0, float("nan")]]), torch.tensor([[1, 1, 0]]))
        tensor(2.)
    """
    mask = mask.bool()
    picked = torch.where(mask, values, torch.zeros_like(values))
    return picked.sum() / mask.sum().clamp(min=1)


def token_metric(values: torch.Tensor, mask: torch.Tensor) -> Metric:
    """A token-mean ``Metric`` of ``values`` over ``mask`` (weight: the token count).

    >>> token_metric(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[1, 1, 0]]))
    Metric(value=2.0, reduce='token_mean', weight=2.0)
    """
    mask = mask.bool()
    return Metric.token_mean(float(masked_mean(values.detach().float(), mask)), int(mask.sum()))


def token_and_seq_counts(mask: torch.Tensor) -> tuple[int, int]:
    """(tokens, sequences with at least one token) of a (batch, seq) loss mask.

    Compute these once on the whole mini-batch and pass them to every micro-batch.

        >>> token_and_seq_counts(torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 0]]))
        (3, 2)
    """
    mask = mask.bool()
    return int(mask.sum()), int(mask.any(dim=-1).sum())


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    global_token_count: int | None = None,
    global_seq_count: int | None = None,
) -> torch.Tensor:
    """Reduce per-token ``values`` (batch, seq) under ``mask`` to a scalar.

    Modes:
      - ``token-mean``: sum over all tokens / token count (DAPO): every token weighs the same,
        so long answers are not diluted.
      - ``seq-mean-token-mean``: mean over sequences of each sequence's token mean (GRPO, GSPO).
      - ``seq-mean-token-sum``: mean over sequences of each sequence's token sum (Dr.GRPO's
        length-unbiased form, up to a constant).

    The token count defaults to this batch's; the sequence count to this batch's sequences
    with at least one token (fully masked rows, e.g. masked truncations, count for nothing).

        >>> v = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
        >>> m = torch.tensor([[1, 1, 1], [1, 0, 0]])
        >>> aggregate(v, m, "token-mean")  # (1 + 1 + 1 + 4) / 4
        tensor(1.7500)
        >>> aggregate(v, m, "seq-mean-token-mean")  # (1 + 4) / 2
        tensor(2.5000)
        >>> aggregate(v, m, "seq-mean-token-sum")  # (3 + 4) / 2
        tensor(3.5000)
    """
    mask = mask.bool()
    picked = torch.where(mask, values, torch.zeros_like(values))
    if mode == "token-mean":
        count = int(mask.sum()) if global_token_count is None else global_token_count
        return picked.sum() / max(count, 1)
    if mode not in MODES:
        raise ValueError(f"agg_mode: {mode!r} is unknown; choose one of {', '.join(MODES)}")
    per_seq = picked.sum(dim=-1)
    if mode == "seq-mean-token-mean":
        per_seq = per_seq / mask.sum(dim=-1).clamp(min=1)
    count = int(mask.any(dim=-1).sum()) if global_seq_count is None else global_seq_count
    return per_seq.sum() / max(count, 1)
