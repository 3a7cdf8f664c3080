"""Receiving half of weight sync, inside vLLM's worker: the ``sailrl_local`` backend of
vLLM's weight-transfer API.

Every backend (this one, and vLLM's ``nccl`` on CUDA machines) runs the same lifecycle the
worker drives: ``start_weight_update`` -> ``update_weights`` once per bucket ->
``finish_weight_update``. Checkpoint-format weights go through vLLM's layerwise reload, which
restores each layer's loading format, loads, re-runs the platform's post-processing (the CPU
backend repacks linear and MoE weights) and copies the result into the live tensors, so
calling ``load_weights`` again on a loaded model is never needed.

Only the top-level parts of the model (``vision_model``, ``mlp1``, ``language_model``) that
an update actually touches enter the reload, so syncing only the trainable part (for
example the language model with a frozen vision tower) leaves the rest untouched and costs
nothing.

vLLM 0.32 bug worked around here: on a weight *update* the unquantized MoE method skips the
experts kernel's own post-load hook (``fused_experts.process_weights_after_loading``), which
on CPU is the prepacking into the grouped-GEMM layout; the reloaded experts then hold raw
weights the CPU kernel misreads (outputs change, but wrongly; seen in the MoE parity test).
``finish_weight_update`` runs that hook again for exactly the expert layers the update
reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from vllm.distributed.weight_transfer import WeightTransferEngine
from vllm.distributed.weight_transfer.base import WeightTransferInitInfo, WeightTransferUpdateInfo
from vllm.model_executor.model_loader.reload import (
    finalize_layerwise_reload,
    initialize_layerwise_reload,
)

from rollout.weight_names import vllm_target


@dataclass
class LocalInitInfo(WeightTransferInitInfo):
    """Nothing to set up: buckets arrive as in-process tensors."""


@dataclass
class LocalBucketUpdateInfo(WeightTransferUpdateInfo):
    """One bucket: (policy name, tensor) pairs."""

    named_tensors: list[tuple[str, torch.Tensor]]


class LocalWeightTransferEngine(WeightTransferEngine[LocalInitInfo, LocalBucketUpdateInfo]):
    """Loads buckets of named tensors handed over in-process (collective_rpc)."""

    init_info_cls = LocalInitInfo
    update_info_cls = LocalBucketUpdateInfo
    supports_draft_weight_update = False

    def __init__(self, config, vllm_config, device, model) -> None:
        super().__init__(config, vllm_config, device, model)
        self._reloading: list[str] = []
        self._expert_layers: set[str] = set()
        self.loaded_names: set[str] = set()

    def init_transfer_engine(self, init_info: LocalInitInfo) -> None:
        """No channel to open."""

    def start_weight_update(self) -> None:
        self._reloading = []
        self._expert_layers = set()
        self.loaded_names = set()

    def update_weights(self, update_info: dict) -> None:
        # The base class synchronises the accelerator, which raises on CPU-only hosts.
        self.receive_weights(self.parse_update_info(update_info))

    def receive_weights(self, update_info: LocalBucketUpdateInfo) -> None:
        config = self.model_config.hf_config
        kept = []
        for name, tensor in update_info.named_tensors:
            target = vllm_target(name, config)  # also rejects unknown names
            if target is None:
                continue
            if ".experts." in target.param:
                self._expert_layers.add(target.param.rsplit(".", 1)[0])
            part = name.split(".", 1)[0]
            if part not in self._reloading:
                initialize_layerwise_reload(getattr(self.model, part))
                self._reloading.append(part)
            kept.append((name, tensor.to(self.device)))
        self.model.load_weights(kept)
        self.loaded_names.update(name for name, _ in kept)

    def finish_weight_update(self) -> None:
        for part in self._reloading:
            finalize_layerwise_reload(getattr(self.model, part), self.model_config)
        for path in sorted(self._expert_layers):
            _rerun_experts_hook(self.model.get_submodule(path))
        self._reloading = []
        self._expert_layers = set()

    def shutdown(self) -> None:
        """Nothing to release."""


def _rerun_experts_hook(layer: torch.nn.Module) -> None:
    """Run the MoE experts kernel's post-load hook that vLLM skips on updates (CPU prepack)."""
    kernel = getattr(getattr(layer, "quant_method", None), "moe_kernel", None)
    experts = getattr(kernel, "fused_experts", None)
    if experts is not None:
        experts.process_weights_after_loading(layer)
