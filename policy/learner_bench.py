"""Timing of learner steps for the benches (``sailrl bench rl`` reuses ``bench_step``).

MFU uses the usual dense estimate: 6 x (trainable parameters) x (tokens) FLOPs per training
step (forward + backward), attention's quadratic term ignored; for MoE pass
``active_params`` (parameters a token actually touches) or the number overstates the work.
"""

from __future__ import annotations

import time
from collections.abc import Sequence as SequenceABC
from typing import Any

import torch

from policy.batch import Sequence
from policy.learner import Learner, LossFn

# Dense bf16 tensor-core peaks (FLOP/s) by device-name fragment.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak of a known GPU name, else None."""
    for fragment, flops in PEAK_BF16_FLOPS.items():
        if fragment in device_name:
            return flops
    return None


def bench_step(
    learner: Learner,
    batch: SequenceABC[Sequence],
    loss_fn: LossFn,
    *,
    warmup: int = 1,
    repeats: int = 3,
    active_params: int | None = None,
) -> dict[str, Any]:
    """Run ``warmup`` untimed then ``repeats`` timed ``train_step`` calls (they DO update the
    weights). Returns seconds per step, tokens/s (this rank's non-pad tokens x world size),
    and MFU on a known GPU (None elsewhere)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        learner.train_step(batch, loss_fn)
    on_cuda = torch.cuda.is_available()
    times, tokens = [], 0.0
    for _ in range(repeats):
        if on_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        metrics = learner.train_step(batch, loss_fn)
        if on_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        tokens = metrics["tokens"]  # global (all ranks) non-pad tokens of one step
    step_s = sorted(times)[len(times) // 2]
    params = active_params or sum(p.numel() for p in learner.module.parameters() if p.requires_grad)
    result: dict[str, Any] = {
        "step_s": step_s,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / step_s,
        "trainable_params": params,
        "device": torch.cuda.get_device_name() if on_cuda else "cpu",
        "mfu": None,
    }
    peak = peak_flops(result["device"]) if on_cuda else None
    if peak:
        per_gpu = 6.0 * params * tokens / learner.world_size / step_s
        result["mfu"] = per_gpu / peak
    return result
