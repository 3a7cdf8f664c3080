"""vLLM plugin entry point (``vllm.general_plugins`` -> ``rollout.plugin:register``).

vLLM calls ``register()`` in every process it starts (front end, engine core, workers), so
after ``pip install sailrl`` a plain ``vllm.LLM(model=<sailrl checkpoint>)`` works. It must be
idempotent and cheap: it registers
- the ``sailvl`` config class with transformers' AutoConfig (vLLM reads config.json with it),
- the ``SAILVLModel`` architecture, imported lazily by vLLM when a model needs it,
- the ``sailrl`` weight-transfer backend (buckets handed over in-process, or broadcast by
  learner rank 0 over NCCL or gloo).
"""

from __future__ import annotations

ARCHITECTURE = "SAILVLModel"
MODEL_CLASS = "rollout.vllm_model:SAILVLForVLLM"
WEIGHT_TRANSFER_BACKEND = "sailrl"


def register() -> None:
    """Register SAIL-VL2 with transformers and vLLM (safe to call many times)."""
    from transformers import AutoConfig
    from vllm import ModelRegistry
    from vllm.distributed.weight_transfer import WeightTransferEngineFactory

    from policy.config import SAILVLConfig

    AutoConfig.register("sailvl", SAILVLConfig, exist_ok=True)
    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)
    try:
        WeightTransferEngineFactory.register_engine(
            WEIGHT_TRANSFER_BACKEND, "rollout.weight_transfer", "SailrlWeightTransferEngine"
        )
    except ValueError as err:  # registered by an earlier call in this process
        if "already registered" not in str(err):
            raise
