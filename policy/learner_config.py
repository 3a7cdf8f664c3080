"""Configuration of the DeepSpeed learner (policy.learner.Learner).

Plain stdlib dataclass so that rl/ and sft/ can nest it in their own typed configs; every
invalid value raises ValueError naming the field and what to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class LearnerConfig:
    """How the learner trains: ZeRO stage, precision, optimiser, schedule and batching.

    Batching: ``train_step`` receives this rank's share of a rollout batch and splits it into
    mini-batches of ``mini_batch_size`` sequences (GLOBAL count, summed over data-parallel
    ranks; 0 = the whole batch in one optimiser step); each mini-batch is packed into
    micro-batches whose padded size (longest sequence x count) stays within
    ``micro_batch_tokens``. One optimiser step per mini-batch.
    """

    zero_stage: Literal[0, 2, 3] = 2
    # ZeRO-Offload: optimiser states (and the fp32 master weights) live in CPU memory and the
    # Adam step runs on the CPU (DeepSpeedCPUAdam). Needs zero_stage 2 or 3.
    offload: bool = False
    lr: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    # Optimiser steps the cosine schedule decays over (warmup included); ignored by "constant".
    total_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0  # 0 disables clipping
    micro_batch_tokens: int = 16384
    mini_batch_size: int = 0
    # "auto": bfloat16 on a CUDA GPU, float32 on CPU.
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    gradient_checkpointing: bool = False
    freeze_vision: bool = False
    freeze_adapter: bool = False
    # None: the model config's router_aux_loss_coef (MoE) or 0 (dense).
    router_aux_loss_coef: float | None = None
    # Per-token entropy handed to the loss function: "off" saves the memory, "detached" for
    # logging, "grad" when the loss uses it (entropy bonus).
    entropy: Literal["off", "detached", "grad"] = "off"
    # Target positions per chunk when turning logits into log-probs (bounds the fp32 copy).
    logits_chunk_tokens: int = 4096
    # Hold a frozen copy of the starting weights (the stage's initial checkpoint, also after
    # ``load``) to compute reference logprobs for a KL term; costs one more copy of the model.
    reference: bool = False
    # ZeRO-3 only (GPU runs): keep the reference's parameter shards in CPU memory.
    reference_offload: bool = False
    # Old logprobs for a loss that needs them: "auto" takes the detached logprobs of the
    # training forward when they are exactly the recompute's (one optimiser step per call, no
    # dropout), else recomputes before the first update; "recompute" always recomputes.
    old_logprobs: Literal["auto", "recompute"] = "auto"
    # Forward the samples of one prompt as one row, the prompt once (policy.shared_prefix):
    # the same log-probs and gradients up to float summation order, far fewer positions.
    shared_prefix: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, msg: str) -> None:
            if not ok:
                raise ValueError(f"learner.{field}: {msg}")

        need(
            self.zero_stage in (0, 2, 3),
            "zero_stage",
            f"must be 0, 2 or 3, got {self.zero_stage!r}",
        )
        need(
            not self.offload or self.zero_stage in (2, 3),
            "offload",
            "CPU offload needs zero_stage 2 or 3; set zero_stage: 2 or offload: false",
        )
        need(
            self.lr > 0 and math.isfinite(self.lr),
            "lr",
            f"must be a positive number, got {self.lr}",
        )
        need(
            len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas),
            "betas",
            f"must be two numbers in [0, 1), got {self.betas!r}",
        )
        need(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        need(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        need(self.schedule in ("constant", "cosine"), "schedule", "must be 'constant' or 'cosine'")
        need(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        need(
            self.schedule != "cosine" or self.total_steps > self.warmup_steps,
            "total_steps",
            f"the cosine schedule needs total_steps > warmup_steps ({self.warmup_steps}), "
            f"got {self.total_steps}",
        )
        need(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")
        need(self.grad_clip >= 0, "grad_clip", f"must be >= 0 (0 disables), got {self.grad_clip}")
        need(self.micro_batch_tokens > 0, "micro_batch_tokens", "must be > 0")
        need(self.mini_batch_size >= 0, "mini_batch_size", "must be >= 0 (0 = whole batch)")
        need(
            self.dtype in ("auto", "float32", "bfloat16"),
            "dtype",
            f"must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}",
        )
        need(
            self.router_aux_loss_coef is None or self.router_aux_loss_coef >= 0,
            "router_aux_loss_coef",
            "must be >= 0 or null (null = the model config's value)",
        )
        need(
            self.entropy in ("off", "detached", "grad"), "entropy", "must be off, detached or grad"
        )
        need(self.logits_chunk_tokens > 0, "logits_chunk_tokens", "must be > 0")
        need(
            not self.reference_offload or self.zero_stage == 3,
            "reference_offload",
            "offloads the reference's ZeRO-3 shards: needs zero_stage 3",
        )
        need(
            self.old_logprobs in ("auto", "recompute"),
            "old_logprobs",
            f"must be 'auto' or 'recompute', got {self.old_logprobs!r}",
        )

    def torch_dtype(self, on_cuda: bool) -> torch.dtype:
        """The training dtype: ``dtype`` with "auto" resolved for the device."""
        if self.dtype == "auto":
            return torch.bfloat16 if on_cuda else torch.float32
        return torch.bfloat16 if self.dtype == "bfloat16" else torch.float32


def lr_multiplier(step: int, config: LearnerConfig) -> float:
    """LR factor (times ``config.lr``) for optimiser step ``step`` (0-based): linear warmup
    from 1/(warmup+1) to 1, then constant or cosine decay to ``min_lr_ratio`` at
    ``total_steps`` (and held there after)."""
    if step < config.warmup_steps:
        return (step + 1) / (config.warmup_steps + 1)
    if config.schedule == "constant":
        return 1.0
    span = max(1, config.total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine
