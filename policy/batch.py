"""Train-batch records and micro-batch packing for the learner.

Alignment convention (one rule for every per-token list): position ``t`` of ``input_ids``,
``loss_mask`` and each ``extras`` list refers to token ``t``, which the model predicts from
tokens ``< t``. So ``loss_mask[t] = 1`` trains the prediction of ``input_ids[t]``, and
``extras["rollout_logprobs"][t]`` is that token's sampling logprob. Position 0 has no
prediction: its loss_mask must be 0, and the per-sequence log-probs the learner returns hold
0.0 there. A value that is one number per sequence (an RL advantage) goes in ``scalars``
instead: it reaches the loss as a (B,) tensor, to broadcast there, not as a per-token list.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Sequence:
    """One training sequence (prompt + response) of the train batch.

    ``pixel_values``: (tiles, 3, S, S) tiles of this sequence's images in order of their
    ``<IMG_CONTEXT>`` runs, or None for text. ``extras``: per-token floats (rollout_logprobs,
    ...) as lists or 1-D tensors, each as long as ``input_ids``. ``scalars``: one float per
    sequence (advantages, ...); the micro-batch carries them as (B,) tensors in its extras.
    ``position_ids``: None = 0..n-1; a row packing several samples restarts them at 0 per
    sample, and the learner then masks attention per sample (transformers' packed-sequence
    detection), so a packed row trains like its samples apart.
    """

    input_ids: list[int]
    loss_mask: list[int]
    pixel_values: torch.Tensor | None = None
    extras: dict[str, list[float] | torch.Tensor] = field(default_factory=dict)
    position_ids: list[int] | None = None
    scalars: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.input_ids)
        if n < 2:
            raise ValueError(f"Sequence.input_ids: need at least 2 tokens, got {n}")
        if len(self.loss_mask) != n:
            raise ValueError(
                f"Sequence.loss_mask: length {len(self.loss_mask)} != len(input_ids) {n}"
            )
        if self.loss_mask[0]:
            raise ValueError("Sequence.loss_mask[0] must be 0: token 0 has no prediction")
        for key, values in self.extras.items():
            if isinstance(values, torch.Tensor) and values.ndim != 1:
                raise ValueError(f"Sequence.extras[{key!r}]: a tensor must be 1-D")
            if key in self.scalars:
                raise ValueError(f"Sequence: {key!r} is both a per-token extra and a scalar")
            if len(values) != n:
                raise ValueError(
                    f"Sequence.extras[{key!r}]: length {len(values)} != len(input_ids) {n}"
                )
        if self.position_ids is not None and len(self.position_ids) != n:
            raise ValueError(
                f"Sequence.position_ids: length {len(self.position_ids)} != len(input_ids) {n}"
            )
        if self.pixel_values is not None and self.pixel_values.ndim != 4:
            raise ValueError(
                "Sequence.pixel_values: expected (tiles, 3, S, S), got shape "
                f"{tuple(self.pixel_values.shape)}"
            )

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_loss_tokens(self) -> int:
        return int(sum(1 for m in self.loss_mask if m))


@dataclass(frozen=True)
class MicroBatch:
    """Right-padded tensors of a group of sequences (rows in ``indices`` order)."""

    indices: list[int]
    input_ids: torch.Tensor  # (B, T) long, pad = 0
    attention_mask: torch.Tensor  # (B, T) long
    loss_mask: torch.Tensor  # (B, T) float
    extras: dict[str, torch.Tensor]  # each (B, T) float; a Sequence.scalars key: (B,)
    pixel_values: torch.Tensor | None  # (sum of tiles, 3, S, S) in row order
    lengths: list[int]
    position_ids: torch.Tensor | None = None  # (B, T) long; None = 0..T-1 per row

    @property
    def num_tokens(self) -> int:
        return sum(self.lengths)

    @property
    def padded_tokens(self) -> int:
        return int(self.input_ids.numel())

    def to(self, device: torch.device) -> MicroBatch:
        return MicroBatch(
            indices=self.indices,
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            loss_mask=self.loss_mask.to(device),
            extras={k: v.to(device) for k, v in self.extras.items()},
            pixel_values=None if self.pixel_values is None else self.pixel_values.to(device),
            lengths=self.lengths,
            position_ids=None if self.position_ids is None else self.position_ids.to(device),
        )


@dataclass(frozen=True)
class LossInputs:
    """What the injected ``loss_fn(mb) -> (loss, metrics)`` sees for one micro-batch.

    All per-token tensors are (B, T), aligned by the module's convention (position 0 and
    padding are 0 in ``loss_mask``); an extra from ``Sequence.scalars`` is (B,), one value per
    row, for the loss to broadcast. Extras are reachable as ``mb.extras["advantages"]`` or
    ``mb.advantages``. ``global_token_count``/``global_sequence_count``: loss tokens and
    sequences in the whole mini-batch summed over all data-parallel ranks; a token-mean loss
    is ``(per_token * mb.loss_mask).sum() / mb.global_token_count`` and the learner sums the
    micro-batch losses as they are.
    """

    logprobs: torch.Tensor
    loss_mask: torch.Tensor
    extras: dict[str, torch.Tensor]
    global_token_count: int
    global_sequence_count: int
    attention_mask: torch.Tensor
    entropy: torch.Tensor | None = None

    def __getattr__(self, name: str) -> torch.Tensor:
        # Only reached when normal lookup fails: expose extras as attributes.
        extras = self.__dict__.get("extras", {})
        if name in extras:
            return extras[name]
        raise AttributeError(
            f"LossInputs has no field or extra {name!r}; extras carried: {sorted(extras)}"
        )


def pack_micro_batches(lengths: SequenceABC[int], token_budget: int) -> list[list[int]]:
    """Group sequence indices so each group's padded size (longest x count) <= token_budget.

    Longest first (next-fit decreasing), so each group's first member sets its padded width.
    A sequence longer than the budget gets a group of its own. Every index appears exactly
    once.

    >>> pack_micro_batches([3, 5, 2, 4], token_budget=8)
    [[1], [3, 0], [2]]
    """
    if token_budget <= 0:
        raise ValueError(f"token_budget must be > 0, got {token_budget}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        if groups and lengths[groups[-1][0]] * (len(groups[-1]) + 1) <= token_budget:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def split_mini_batches(n: int, size: int) -> list[range]:
    """Consecutive index ranges of ``size`` (the last may be shorter); size 0 = one range.

    >>> split_mini_batches(5, 2)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    if n == 0:
        return []
    size = n if size <= 0 else size
    return [range(s, min(n, s + size)) for s in range(0, n, size)]


def collate(seqs: SequenceABC[Sequence], indices: list[int]) -> MicroBatch:
    """Right-pad ``seqs[indices]`` into a MicroBatch; images concatenated in row order.

    Every sequence of one batch must carry the same extras and scalars keys; scalars
    become (B,) float32 tensors among the extras.
    """
    rows = [seqs[i] for i in indices]
    width = max(len(s) for s in rows)
    keys, scalar_keys = sorted(rows[0].extras), sorted(rows[0].scalars)
    for s in rows:
        if sorted(s.extras) != keys or sorted(s.scalars) != scalar_keys:
            raise ValueError(
                f"sequences of one batch carry different extras: {keys} + {scalar_keys} vs "
                f"{sorted(s.extras)} + {sorted(s.scalars)}"
            )
    shape = (len(rows), width)
    input_ids = torch.zeros(shape, dtype=torch.long)
    attention = torch.zeros(shape, dtype=torch.long)
    loss_mask = torch.zeros(shape, dtype=torch.float32)
    extras = {k: torch.zeros(shape, dtype=torch.float32) for k in keys}
    for r, s in enumerate(rows):
        n = len(s)
        input_ids[r, :n] = torch.tensor(s.input_ids, dtype=torch.long)
        attention[r, :n] = 1
        loss_mask[r, :n] = torch.tensor(s.loss_mask, dtype=torch.float32)
        for k in keys:
            extras[k][r, :n] = torch.as_tensor(s.extras[k], dtype=torch.float32)
    for k in scalar_keys:
        extras[k] = torch.tensor([s.scalars[k] for s in rows], dtype=torch.float32)
    positions = None
    if any(s.position_ids is not None for s in rows):
        positions = torch.arange(width).repeat(len(rows), 1)
        for r, s in enumerate(rows):
            if s.position_ids is not None:
                positions[r, : len(s)] = torch.tensor(s.position_ids, dtype=torch.long)
    images = [s.pixel_values for s in rows if s.pixel_values is not None]
    return MicroBatch(
        indices=list(indices),
        input_ids=input_ids,
        attention_mask=attention,
        loss_mask=loss_mask,
        extras=extras,
        pixel_values=torch.cat(images) if images else None,
        lengths=[len(s) for s in rows],
        position_ids=positions,
    )
