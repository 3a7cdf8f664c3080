"""One micro-batch's forward for the learner, turned into per-token log-probs: plain padded
rows (``policy.batch.collate``), or shared-prefix rows (``policy.shared_prefix``: each
prompt once per group) when the batch has groups that share a prompt.

Either way the loss sees the plain (B, T) layout of the micro-batch's sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from typing import Any

import torch

from policy.batch import Sequence, pack_micro_batches
from policy.shared_prefix import (
    Unit,
    gather_entropy,
    gather_logprobs,
    pack_units,
    plan_units,
    unit_length,
)

# The 4D mask form each attention implementation reads (others: no shared-prefix rows).
MASK_KINDS = {"sdpa": "bool", "eager": "additive"}


def mask_kind(model: Any) -> str | None:
    """The mask form the model's attention needs, or None when it takes no custom 4D mask."""
    inner = getattr(model, "language_model", model)
    impl = getattr(getattr(inner, "config", None), "_attn_implementation", None)
    return MASK_KINDS.get(impl)


def plan_micro_batches(
    seqs: SequenceABC[Sequence], token_budget: int, share: bool
) -> list[list[Unit]]:
    """Micro-batches of units, each within ``token_budget`` positions (longest row x rows;
    longest first, see ``policy.batch.pack_micro_batches``). Without ``share`` every
    sequence is a unit of its own (exactly the plain path's grouping)."""
    lengths = [len(s) for s in seqs]
    if share:
        units = plan_units(seqs, token_budget)
    else:
        units = [Unit((i,), n) for i, n in enumerate(lengths)]
    sizes = [unit_length(u, lengths) for u in units]
    return [[units[j] for j in group] for group in pack_micro_batches(sizes, token_budget)]


def members(units: SequenceABC[Unit]) -> list[int]:
    """The micro-batch's sequence indices in row order of its (B, T) layout."""
    return [i for u in units for i in u.members]


def positions(units: SequenceABC[Unit], seqs: SequenceABC[Sequence]) -> int:
    """Positions the model runs for this micro-batch (padded rows x width)."""
    lengths = [len(s) for s in seqs]
    if all(len(u.members) == 1 for u in units):
        return max(lengths[u.members[0]] for u in units) * len(units)
    return max(unit_length(u, lengths) for u in units) * len(units)


def filled_positions(units: SequenceABC[Unit], seqs: SequenceABC[Sequence]) -> int:
    """Positions of this micro-batch that hold a token (a shared prompt counted once)."""
    lengths = [len(s) for s in seqs]
    return sum(unit_length(u, lengths) for u in units)


def shares(units: SequenceABC[Unit]) -> bool:
    return any(len(u.members) > 1 for u in units)


def packed_logprobs(
    run: Callable[[dict[str, Any]], Any],
    seqs: SequenceABC[Sequence],
    units: SequenceABC[Unit],
    shape: tuple[int, int],
    *,
    loss_only: bool,
    kind: str,
    dtype: torch.dtype,
    device: torch.device,
    chunk: int,
    entropy: str = "off",
    extra: dict[str, Any] | None = None,
) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """Forward the units as shared-prefix rows through ``run(kwargs)``; returns the model
    output, the (B, T) log-probs (the wanted tokens: every one, or with ``loss_only`` the
    loss tokens; 0 elsewhere) and, unless ``entropy`` is "off", their entropy (with grad
    only for "grad"). Logits are computed only from the first column a prediction needs."""
    packed = pack_units(seqs, units, loss_only=loss_only).to(device)
    width = packed.input_ids.shape[1]
    kwargs: dict[str, Any] = {
        "input_ids": packed.input_ids,
        "position_ids": packed.position_ids,
        "attention_mask": packed.attention_mask(kind, dtype),
        "use_cache": False,
        "logits_to_keep": width - packed.keep_from(),
        **(extra or {}),
    }
    if packed.pixel_values is not None:
        kwargs["pixel_values"] = packed.pixel_values.to(dtype)
    out = run(kwargs)
    logprobs = gather_logprobs(packed, out.logits, shape, chunk)
    ent = None
    if entropy != "off":
        with torch.set_grad_enabled(entropy == "grad" and torch.is_grad_enabled()):
            ent = gather_entropy(packed, out.logits, shape, chunk)
    return out, logprobs, ent
