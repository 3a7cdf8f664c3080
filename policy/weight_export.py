"""Bucketed export of a (possibly ZeRO-3 partitioned) model's parameters.

The rollout engine receives weights in buckets of at most ``bucket_bytes`` (one round trip
per bucket, not per parameter). Under ZeRO-3 each bucket's shards are gathered together, so
iterating the export is a COLLECTIVE: every data-parallel rank must iterate it to the end
(the other ranks may drop what they get).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

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


def load_into(
    module: nn.Module,
    weights: dict[str, torch.Tensor],
    source: object,
    *,
    zero3: bool,
    rank: int,
    bucket_bytes: int = 256 * 1024**2,
) -> None:
    """Copy in-memory-named ``weights`` into ``module``'s (possibly ZeRO-3 partitioned)
    parameters, bucket by bucket; errors name ``source``, the parameter and the shapes."""
    params = dict(module.named_parameters())
    missing = sorted(set(params) - set(weights))
    if missing:
        raise ValueError(f"weights in {source} lack {len(missing)} parameters, e.g. {missing[:3]}")
    names = list(params)
    sizes = [(n, int(weights[n].numel()) * weights[n].element_size()) for n in names]
    for group in plan_buckets(sizes, bucket_bytes):
        tensors = [params[n] for n in group]
        if zero3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(tensors, modifier_rank=0):
                if rank == 0:
                    _copy_into(group, tensors, weights, source)
        else:
            _copy_into(group, tensors, weights, source)


def _copy_into(
    names: list[str], params: list[torch.Tensor], weights: dict[str, torch.Tensor], source: object
) -> None:
    with torch.no_grad():
        for name, param in zip(names, params):
            value = weights[name]
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{source}: {name} has shape {tuple(value.shape)}, the model expects "
                    f"{tuple(param.shape)}"
                )
            param.copy_(value.to(device=param.device, dtype=param.dtype))


class _TensorsView:
    """Just enough of a model (``config`` and ``state_dict()``) for policy.checkpoint."""

    def __init__(self, config: Any, tensors: dict[str, torch.Tensor]) -> None:
        self.config = config
        self._tensors = tensors

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._tensors
