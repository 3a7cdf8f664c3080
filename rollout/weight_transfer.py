"""Receiving half of weight sync, inside vLLM's worker: the ``sailrl`` backend of vLLM's
weight-transfer API. Buckets of (``policy/`` name, tensor) reach it in two ways:

- handed over in-process, one ``update_weights`` call per bucket (the ``local`` transport:
  CPU, tests, the CLI's parity check, and RL runs that ship buckets through Ray's object
  store);
- broadcast by learner rank 0 over NCCL (CUDA) or gloo, in the self-describing stream of
  ``rollout.broadcast``: after ``init_weight_transfer_engine`` has opened the channel, one
  ``update_weights`` call receives buckets until the sender's END.

Both run inside the lifecycle the worker drives: ``start_weight_update`` ->
``update_weights`` ... -> ``finish_weight_update``. Checkpoint-format weights go through
vLLM's layerwise reload, which restores each layer's loading format, loads, re-runs the
platform's post-processing (the CPU backend repacks linear and MoE weights) and copies the
result into the live tensors, so calling ``load_weights`` again on a loaded model is never
needed.

Only the top-level parts of the model (``vision_model``, ``mlp1``, ``language_model``) that
an update actually touches enter the reload, so syncing only the trainable part (for
example the language model with a frozen vision tower) leaves the rest untouched and costs
nothing.

vLLM 0.32 bug worked around here: on a weight *update* the unquantized MoE method skips the
experts kernel's own post-load hook (``fused_experts.process_weights_after_loading``), which
on CPU is the prepacking into the grouped-GEMM layout; the reloaded experts then hold raw
weights the CPU kernel misreads (outputs change, but wrongly; seen in the MoE parity test).
``finish_weight_update`` runs that hook again for exactly the expert layers the update
reloaded. Likewise a tied lm_head (SAIL-VL2-2B's): the CPU backend packs a copy of the
shared embedding for the logits GEMM at load time, which a reload of ``embed_tokens`` leaves
stale; the model's ``after_weight_update`` re-ties and re-packs it.
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

from rollout.broadcast import Channel, StreamStats, receive_stream
from rollout.weight_names import vllm_target


@dataclass
class ChannelInfo(WeightTransferInitInfo):
    """Where learner rank 0 hosts the broadcast group; this engine's workers take ranks
    ``rank_offset + worker rank``."""

    transport: str
    master_address: str
    master_port: int
    rank_offset: int
    world_size: int
    timeout_s: float = 600.0


@dataclass
class BucketInfo(WeightTransferUpdateInfo):
    """One in-process bucket of (policy name, tensor) pairs; None: receive the broadcast
    stream of a whole update from the open channel."""

    named_tensors: list[tuple[str, torch.Tensor]] | None = None


class SailrlWeightTransferEngine(WeightTransferEngine[ChannelInfo, BucketInfo]):
    """Loads buckets through vLLM's layerwise reload, only for the parts they touch."""

    init_info_cls = ChannelInfo
    update_info_cls = BucketInfo
    supports_draft_weight_update = False

    def __init__(self, config, vllm_config, device, model) -> None:
        super().__init__(config, vllm_config, device, model)
        self._reloading: list[str] = []
        self._expert_layers: set[str] = set()
        self.loaded_names: set[str] = set()
        self.channel: Channel | None = None
        self.last_stream = StreamStats()  # what the last broadcast update brought

    def init_transfer_engine(self, init_info: ChannelInfo) -> None:
        """Join learner rank 0's broadcast group (blocks until every member has joined)."""
        if self.channel is not None:
            raise RuntimeError("the weight-sync channel is already open")
        self.channel = Channel(
            init_info.transport,
            init_info.master_address,
            init_info.master_port,
            rank=init_info.rank_offset + self.parallel_config.rank,
            world_size=init_info.world_size,
            timeout_s=init_info.timeout_s,
            device=self.device,  # where nccl receives (gloo: CPU)
        )

    def start_weight_update(self) -> None:
        self._reloading = []
        self._expert_layers = set()
        self.loaded_names = set()

    def update_weights(self, update_info: dict) -> None:
        # The base class synchronises the accelerator, which raises on CPU-only hosts.
        self.receive_weights(self.parse_update_info(update_info))

    def receive_weights(self, update_info: BucketInfo) -> None:
        if update_info.named_tensors is not None:
            self.load(update_info.named_tensors)
            return
        if self.channel is None:
            raise RuntimeError("no weight-sync channel: open it (init_weight_transfer_engine)")
        try:
            self.last_stream = receive_stream(self.channel, self.load)
        except BaseException:
            # The worker drops the session on error: leave every layer in its live format.
            self.finish_weight_update()
            raise

    def load(self, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
        """Load one bucket (names checked first: an unknown name loads nothing)."""
        config = self.model_config.hf_config
        # Every name is resolved (unknown ones raise) before any state changes.
        targets = [(name, tensor, vllm_target(name, config)) for name, tensor in named_tensors]
        kept = [(name, tensor) for name, tensor, target in targets if target is not None]
        self._expert_layers.update(
            target.param.rsplit(".", 1)[0]
            for _, _, target in targets
            if target is not None and ".experts." in target.param
        )
        for part in dict.fromkeys(name.split(".", 1)[0] for name, _ in kept):
            if part not in self._reloading:
                initialize_layerwise_reload(getattr(self.model, part))
                self._reloading.append(part)
        self.model.load_weights([(name, tensor.to(self.device)) for name, tensor in kept])
        self.loaded_names.update(name for name, _ in kept)

    def finish_weight_update(self) -> None:
        for part in self._reloading:
            finalize_layerwise_reload(getattr(self.model, part), self.model_config)
        for path in sorted(self._expert_layers):
            _rerun_experts_hook(self.model.get_submodule(path))
        if self._reloading and hasattr(self.model, "after_weight_update"):
            self.model.after_weight_update(self.loaded_names)  # e.g. a tied lm_head
        self._reloading = []
        self._expert_layers = set()

    def shutdown(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


def last_stream(worker) -> StreamStats:
    """collective_rpc target: what the worker's last broadcast update brought."""
    return worker.weight_transfer_engine.last_stream


def _rerun_experts_hook(layer: torch.nn.Module) -> None:
    """Run the MoE experts kernel's post-load hook that vLLM skips on updates (CPU prepack)."""
    kernel = getattr(getattr(layer, "quant_method", None), "moe_kernel", None)
    experts = getattr(kernel, "fused_experts", None)
    if experts is not None:
        experts.process_weights_after_loading(layer)
