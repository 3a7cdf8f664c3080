"""Process-group and DeepSpeed set-up of the learner (``policy.learner``): torch.distributed
from MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE (or a single loopback process) and the
DeepSpeed JSON config."""

from __future__ import annotations

import os
import socket
from typing import Any

import torch
import torch.distributed as dist

from policy.learner_config import LearnerConfig

_CHOSEN_PORT: list[str | None] = [None]  # MASTER_PORT as init_distributed last chose it


def init_distributed(on_cuda: bool) -> None:
    """Initialise torch.distributed (nccl on GPU, gloo on CPU) unless already done; defaults
    for a single process: 127.0.0.1, a free port, rank 0 of 1."""
    if dist.is_initialized():
        return
    if "WORLD_SIZE" not in os.environ or os.environ["WORLD_SIZE"] == "1":
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        # A port we chose for an earlier single-process group in this process may still be
        # held by its store: choose afresh unless the caller set one.
        if os.environ.get("MASTER_PORT") in (None, _CHOSEN_PORT[0]):
            with socket.socket() as sock:
                sock.bind((os.environ["MASTER_ADDR"], 0))
                _CHOSEN_PORT[0] = os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        if key not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {key} is not set")
    # Ray gives each learner actor one visible GPU, so the local rank is 0 unless told.
    os.environ.setdefault("LOCAL_RANK", "0")
    if on_cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    import deepspeed

    _forget_deepspeed_groups()
    # Our own store (listening on MASTER_ADDR only); DeepSpeed adopts the initialised group.
    from deepspeed.constants import default_pg_timeout

    from policy.learner_store import bound_store

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    store = bound_store(addr, port, world, rank == 0, default_pg_timeout)
    backend = "nccl" if on_cuda else "gloo"
    dist.init_process_group(
        backend, store=store, rank=rank, world_size=world, timeout=default_pg_timeout
    )
    deepspeed.init_distributed(dist_backend=backend)


def _forget_deepspeed_groups() -> None:
    """DeepSpeed caches process groups (a clone of the world group, ...) in module globals.
    When torch.distributed was torn down since (another engine in this process, e.g. vLLM's
    cleanup, destroys the default group), those handles are dead: drop them so DeepSpeed
    builds new ones on the new world."""
    from deepspeed.utils import groups

    for name in ("_WORLD_GROUP", "_DATA_PARALLEL_GROUP", "_MODEL_PARALLEL_GROUP",
                 "_TENSOR_MODEL_PARALLEL_GROUP", "_ZERO_PARAM_INTRA_PARALLEL_GROUP"):  # fmt: skip
        if hasattr(groups, name):
            setattr(groups, name, None)
    for name in ("_EXPERT_PARALLEL_GROUP", "_EXPERT_DATA_PARALLEL_GROUP", "_ALL_TO_ALL_GROUP"):
        if isinstance(getattr(groups, name, None), dict):
            getattr(groups, name).clear()


def deepspeed_config(config: LearnerConfig, dtype: torch.dtype, world_size: int) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``config`` (gradient accumulation is driven by hand)."""
    zero: dict[str, Any] = {"stage": config.zero_stage}
    if config.offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "train_batch_size": world_size,
        "gradient_clipping": config.grad_clip,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**62,
        "wall_clock_breakdown": False,
    }
