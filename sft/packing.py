"""Packing of tokenised SFT samples into rows of at most ``budget`` tokens, with attention kept
inside each sample.

A packed row concatenates samples; ``position_ids`` restart at 0 for each sample, and
``block_causal_mask`` gives the matching (1, 1, T, T) additive mask (causal within a sample,
nothing across samples). Transformers' Qwen3 also derives the same block-diagonal mask from
restarting position_ids when called with ``attention_mask=None`` and no KV cache, so either
route gives each sample exactly the logits it would get alone.

Cross-sample predictions never carry loss: the first token of every sample is a prompt token
(loss_mask 0), so the logit that would predict it from the previous sample is never trained.

    >>> pack_groups([3, 4, 2, 5], budget=7)
    [[0, 1], [2, 3]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SFTSample:
    """One tokenised example: ``loss_mask[t] == 1`` trains the prediction of ``input_ids[t]``.

    ``pixel_values`` holds this sample's tiles (all images, in order) or None.
    """

    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    pixel_values: torch.Tensor | None = None
    mode: str = "think"

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_loss_tokens(self) -> int:
        return sum(self.loss_mask)


@dataclass(frozen=True)
class PackedRow:
    """Several samples in one row. ``seq_lens`` sum to ``len(input_ids)``."""

    input_ids: torch.Tensor  # (T,) long
    loss_mask: torch.Tensor  # (T,) float
    position_ids: torch.Tensor  # (T,) long, restarting at each sample
    seq_lens: tuple[int, ...]
    pixel_values: torch.Tensor | None

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.numel())


def pack_groups(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Greedy in-order packing: consecutive samples share a row while it stays <= ``budget``.

    Order is kept (the data cursor and the Think-Fusion ratio stay meaningful per step). A
    sample longer than ``budget`` raises ValueError; filter or raise the budget first.
    """
    if budget <= 0:
        raise ValueError(f"pack budget must be positive, got {budget}")
    groups: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if n > budget:
            raise ValueError(f"sample {i} has {n} tokens, more than the pack budget {budget}")
        if groups and used + n <= budget:
            groups[-1].append(i)
            used += n
        else:
            groups.append([i])
            used = n
    return groups


def pack_samples(samples: Sequence[SFTSample]) -> PackedRow:
    """Concatenate ``samples`` into one row with restarting positions and joined tiles."""
    if not samples:
        raise ValueError("cannot pack an empty list of samples")
    ids = [t for s in samples for t in s.input_ids]
    mask = [m for s in samples for m in s.loss_mask]
    positions = [p for s in samples for p in range(len(s))]
    pixels = [s.pixel_values for s in samples if s.pixel_values is not None]
    return PackedRow(
        input_ids=torch.tensor(ids, dtype=torch.long),
        loss_mask=torch.tensor(mask, dtype=torch.float32),
        position_ids=torch.tensor(positions, dtype=torch.long),
        seq_lens=tuple(len(s) for s in samples),
        pixel_values=torch.cat(pixels) if pixels else None,
    )


def block_causal_mask(seq_lens: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, 1, T, T) additive mask: 0 where query t may attend key s (same sample, s <= t),
    the dtype's minimum elsewhere. Eager and SDPA attention both accept it.

    >>> (block_causal_mask([2, 1])[0, 0] == 0).int().tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    segment = torch.repeat_interleave(torch.arange(len(seq_lens)), torch.tensor(list(seq_lens)))
    total = segment.numel()
    causal = torch.ones(total, total, dtype=torch.bool).tril()
    allowed = causal & (segment[:, None] == segment[None, :])
    mask = torch.zeros(total, total, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]
