"""Shared-prefix packing for the learner: the samples of one prompt share its tokens, so
the forward runs the prompt once per group instead of once per sample.

A *unit* is a set of sequences whose tokens before their first loss token (the prompt) are
identical. It becomes one row: the prefix, then each member's suffix (its completion) in
turn. Position ids restart at the prefix length for every suffix, and a 4D attention mask
lets each suffix token see the prefix and the earlier tokens of its own suffix only, so every
token is computed from exactly the context and positions it has in its own row: the
log-probs and gradients equal the plain path's up to floating-point summation order
(``tests/test_shared_prefix.py``). The prefix's activations receive the sum of the members'
gradients, as the shared weights do on the plain path.

The loss still sees the plain (B, T) layout (``policy.batch.collate`` of the members):
``gather_logprobs`` maps each wanted position back from the packed logits.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import torch

from policy.batch import Sequence


@dataclass(frozen=True)
class Unit:
    """Sequences (indices into the batch) that share their first ``prefix`` tokens."""

    members: tuple[int, ...]
    prefix: int


def prompt_length(seq: Sequence) -> int:
    """Tokens before the first loss token (the whole sequence if it has none)."""
    for t, m in enumerate(seq.loss_mask):
        if m:
            return t
    return len(seq)


def unit_length(unit: Unit, lengths: SequenceABC[int]) -> int:
    """Positions of the unit's packed row: the prefix once, then every member's suffix."""
    return unit.prefix + sum(lengths[i] - unit.prefix for i in unit.members)


def plan_units(seqs: SequenceABC[Sequence], token_budget: int) -> list[Unit]:
    """Group sequences by identical prompt tokens (text only: a sequence with images is a
    unit of its own, since equal placeholder tokens need not mean equal images), in order of
    first appearance; a group whose packed row would exceed ``token_budget`` is split into
    several units (each repeats the prefix), so no row outgrows the micro-batch budget
    unless one sequence alone does.

    >>> from policy.batch import Sequence
    >>> s = [Sequence([1, 2, 3, 4], [0, 0, 1, 1]), Sequence([1, 2, 5], [0, 0, 1]),
    ...      Sequence([9, 2, 5], [0, 0, 1])]
    >>> plan_units(s, 100)
    [Unit(members=(0, 1), prefix=2), Unit(members=(2,), prefix=2)]
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    order: list[tuple[object, list[int]]] = []
    for i, seq in enumerate(seqs):
        k = prompt_length(seq)
        if seq.pixel_values is not None:
            order.append((None, [i]))
            continue
        key = tuple(seq.input_ids[:k])
        if key not in groups:
            groups[key] = []
            order.append((key, groups[key]))
        groups[key].append(i)
    units: list[Unit] = []
    for _, members in order:
        k = prompt_length(seqs[members[0]])
        current: list[int] = []
        size = k
        for i in members:
            extra = len(seqs[i]) - k
            if current and size + extra > token_budget:
                units.append(Unit(tuple(current), k))
                current, size = [], k
            current.append(i)
            size += extra
        units.append(Unit(tuple(current), k))
    return units


@dataclass(frozen=True)
class PackedRows:
    """One micro-batch of units as padded rows, and where each member's predictions lie."""

    input_ids: torch.Tensor  # (R, W) long, pad 0
    position_ids: torch.Tensor  # (R, W) long
    segments: torch.Tensor  # (R, W) long: 0 prefix, j + 1 suffix of member j, -1 pad
    pixel_values: torch.Tensor | None
    source: torch.Tensor  # (N,) flat row position (r * W + column) whose logits predict ...
    rows: torch.Tensor  # (N,) ... the token at (rows, cols) of the members' (B, T) layout
    cols: torch.Tensor  # (N,)
    targets: torch.Tensor  # (N,) that token's id

    def attention_mask(self, kind: str, dtype: torch.dtype) -> torch.Tensor:
        """(R, 1, W, W) mask: a query sees earlier positions of the prefix and of its own
        suffix (a pad only itself). ``kind`` "bool" (SDPA: True = attend) or "additive"
        (eager attention: 0 / the dtype's minimum)."""
        seg = self.segments
        width = seg.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        q, k = seg.unsqueeze(2), seg.unsqueeze(1)
        allowed = causal & (k >= 0) & ((k == 0) | (k == q))
        allowed |= torch.eye(width, dtype=torch.bool)  # pads (and every token) see themselves
        allowed = allowed.unsqueeze(1).to(seg.device)
        if kind == "bool":
            return allowed
        zero = torch.zeros((), dtype=dtype, device=seg.device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)

    def keep_from(self) -> int:
        """The first column whose logits any wanted prediction reads (logits before it are
        not computed: the model's ``logits_to_keep``)."""
        if not self.source.numel():
            return self.input_ids.shape[1] - 1
        return int((self.source % self.input_ids.shape[1]).min())

    def to(self, device: torch.device) -> PackedRows:
        return PackedRows(
            *(None if t is None else t.to(device) for t in (
                self.input_ids, self.position_ids, self.segments, self.pixel_values,
                self.source, self.rows, self.cols, self.targets))
        )  # fmt: skip


def pack_units(
    seqs: SequenceABC[Sequence], units: SequenceABC[Unit], *, loss_only: bool
) -> PackedRows:
    """Rows of ``units``; the wanted predictions are every token ``t >= 1`` of every member
    (``loss_only``: only its loss tokens), addressed in the members' (B, T) layout, members
    in unit order (that of ``collate(seqs, [i for u in units for i in u.members])``)."""
    lengths = [len(s) for s in seqs]
    width = max(unit_length(u, lengths) for u in units)
    shape = (len(units), width)
    input_ids = torch.zeros(shape, dtype=torch.long)
    positions = torch.arange(width).repeat(len(units), 1)
    segments = torch.full(shape, -1, dtype=torch.long)
    source: list[int] = []
    rows: list[int] = []
    cols: list[int] = []
    targets: list[int] = []
    images = []
    b = 0
    for r, unit in enumerate(units):
        k = unit.prefix
        first = seqs[unit.members[0]]
        input_ids[r, :k] = torch.tensor(first.input_ids[:k], dtype=torch.long)
        positions[r, :k] = torch.arange(k)
        segments[r, :k] = 0
        if first.pixel_values is not None:
            images.append(first.pixel_values)
        offset = k
        for j, i in enumerate(unit.members):
            seq = seqs[i]
            n = len(seq) - k
            if n:
                input_ids[r, offset : offset + n] = torch.tensor(seq.input_ids[k:])
                positions[r, offset : offset + n] = torch.arange(k, k + n)
                segments[r, offset : offset + n] = j + 1
            for t in range(1, len(seq)):
                if loss_only and not seq.loss_mask[t]:
                    continue
                u = t - 1  # the position whose logits predict token t
                col = u if u < k else offset + u - k
                source.append(r * width + col)
                rows.append(b)
                cols.append(t)
                targets.append(seq.input_ids[t])
            offset += n
            b += 1
    as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return PackedRows(
        input_ids=input_ids,
        position_ids=positions,
        segments=segments,
        pixel_values=torch.cat(images) if images else None,
        source=as_long(source),
        rows=as_long(rows),
        cols=as_long(cols),
        targets=as_long(targets),
    )


def _flat_index(packed: PackedRows, logits: torch.Tensor) -> torch.Tensor:
    """Rows of ``logits.reshape(-1, V)`` for the wanted predictions; ``logits`` holds the
    last K columns of the packed rows."""
    width = packed.input_ids.shape[1]
    keep = logits.shape[1]
    return (packed.source // width) * keep + (packed.source % width - (width - keep))


def gather_logprobs(
    packed: PackedRows, logits: torch.Tensor, shape: tuple[int, int], chunk: int = 4096
) -> torch.Tensor:
    """(R, K, V) logits of the rows' last K columns -> (B, T) float32 log-probs of the
    wanted tokens in the members' layout, 0 elsewhere; fp32 on ``chunk`` at a time."""
    flat = logits.reshape(-1, logits.shape[-1])
    index = _flat_index(packed, logits)
    pieces = []
    for s in range(0, index.numel(), chunk):
        part = flat[index[s : s + chunk]].float()
        target = packed.targets[s : s + chunk]
        picked = part.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        pieces.append(picked - torch.logsumexp(part, dim=-1))
    out = logits.new_zeros(shape, dtype=torch.float32)
    if not pieces:
        return out
    return out.index_put((packed.rows, packed.cols), torch.cat(pieces))


def gather_entropy(
    packed: PackedRows, logits: torch.Tensor, shape: tuple[int, int], chunk: int = 4096
) -> torch.Tensor:
    """The (B, T) float32 entropy of the same predictions as ``gather_logprobs``."""
    flat = logits.reshape(-1, logits.shape[-1])
    index = _flat_index(packed, logits)
    pieces = []
    for s in range(0, index.numel(), chunk):
        logp = torch.log_softmax(flat[index[s : s + chunk]].float(), dim=-1)
        pieces.append(-(logp.exp() * logp).sum(-1))
    out = logits.new_zeros(shape, dtype=torch.float32)
    if not pieces:
        return out
    return out.index_put((packed.rows, packed.cols), torch.cat(pieces))
