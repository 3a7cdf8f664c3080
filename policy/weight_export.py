"""Bucketed export of a (possibly ZeRO-3 partitioned) model's parameters.

The rollout engine receives weights in buckets of at most ``bucket_bytes`` (one round trip
per bucket, not per parameter). Under ZeRO-3 each bucket's shards are gathered together, so
iterating the export is a COLLECTIVE: every data-parallel rank must iterate it to the end
(the other ranks may drop what they get).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn


def param_nbytes(param: torch.Tensor) -> int:
    """Full (unpartitioned) size in bytes; ZeRO-3 params report their full numel as ds_numel."""
    numel = getattr(param, "ds_numel", None)
    return int(numel if numel is not None else param.numel()) * param.element_size()


def plan_buckets(sizes: Iterable[tuple[str, int]], bucket_bytes: int) -> list[list[str]]:
    """Group names in order so each group's total bytes <= bucket_bytes; a single tensor
    larger than the budget forms its own group.

    >>> plan_buckets([("a", 4), ("b", 4), ("c", 9), ("d", 1)], bucket_bytes=8)
    [['a', 'b'], ['c'], ['d']]
    """
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be > 0, got {bucket_bytes}")
    groups: list[list[str]] = []
    used = 0
    for name, size in sizes:
        if groups and groups[-1] and used + size <= bucket_bytes:
            groups[-1].append(name)
            used += size
        else:
            groups.append([name])
            used = size
    return groups


def export_buckets(
    module: nn.Module,
    bucket_bytes: int,
    *,
    trainable_only: bool = False,
    zero3: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Yield lists of (name, detached copy on ``device``) covering the module's parameters.

    ``trainable_only`` skips parameters with requires_grad False (a frozen vision tower never
    changes, so it need not be re-sent). ``zero3``: gather each bucket's shards first
    (collective, see module docstring). ``dtype``: cast on the way out (None keeps it).
    ``device``: where the copies go (a GPU for an NCCL broadcast; CPU for Ray's object store).
    """
    params = {
        name: p for name, p in module.named_parameters() if p.requires_grad or not trainable_only
    }
    plan = plan_buckets(((n, param_nbytes(p)) for n, p in params.items()), bucket_bytes)
    for names in plan:
        group = [params[n] for n in names]
        if zero3:
            import deepspeed  # deferred: importing DeepSpeed is slow and only needed here

            with deepspeed.zero.GatheredParameters(group, modifier_rank=None):
                bucket = [(n, _copy(p, dtype, device)) for n, p in zip(names, group)]
        else:
            bucket = [(n, _copy(p, dtype, device)) for n, p in zip(names, group)]
        yield bucket


def _copy(param: torch.Tensor, dtype: torch.dtype | None, device) -> torch.Tensor:
    # always a copy: the caller must never alias live (or soon re-partitioned) storage
    return param.detach().to(device=device, dtype=dtype or param.dtype, copy=True)
