"""The frozen reference policy of a KL term (``LearnerConfig.reference``).

The reference is the stage's starting weights, held on every learner rank beside the policy:

- ZeRO-0/2: a whole frozen copy per rank (the policy's parameters are whole there too);
- ZeRO-3: a DeepSpeed ZeRO-3 inference engine (no optimiser), so each rank holds 1/world of
  its parameters and a forward gathers each layer's weights as it runs, as the policy's does.
  With ``reference_offload`` (a GPU run) the shards live in CPU memory and only the layer
  being computed visits the GPU.

A sharded reference's forward is collective: every rank must run as many passes (the learner
lines ranks up with zero-weight passes, as for the policy under ZeRO-3).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from policy.learner_config import LearnerConfig


def reference_model(
    model: nn.Module, config: LearnerConfig, dtype: torch.dtype, device: torch.device
) -> nn.Module:
    """``model`` (a private copy of the starting weights) frozen, in eval mode, placed as the
    learner's ZeRO stage asks (see the module docstring)."""
    model.eval().requires_grad_(False)
    if config.zero_stage != 3:
        return model.to(device=device, dtype=dtype)
    import deepspeed

    engine, *_ = deepspeed.initialize(model=model, config=reference_ds_config(config, dtype))
    engine.eval()
    return engine


def reference_ds_config(config: LearnerConfig, dtype: torch.dtype) -> dict[str, Any]:
    """DeepSpeed config of a ZeRO-3 reference: parameters partitioned, no optimiser; the
    shards offloaded to CPU memory with ``reference_offload``.

    >>> from policy.learner_config import LearnerConfig
    >>> cfg = reference_ds_config(LearnerConfig(zero_stage=3, reference=True), torch.float32)
    >>> cfg["zero_optimization"]
    {'stage': 3}
    """
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_initialized() else 1
    zero: dict[str, Any] = {"stage": 3}
    if config.reference_offload:
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": 1,
        "train_batch_size": world,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "zero_optimization": zero,
        "steps_per_print": 2**62,
        "wall_clock_breakdown": False,
    }


def is_zero3(model: nn.Module) -> bool:
    """Whether ``model`` is a DeepSpeed ZeRO-3 engine (its forward is collective)."""
    zero_stage = getattr(model, "zero_optimization_stage", None)
    return callable(zero_stage) and zero_stage() == 3
