"""The DeepSpeed learner: train steps with an injected loss, log-prob recompute, bucketed
weight export and save/load. Ray-free: the rl package places one instance per data-parallel
rank (MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE set in the environment) and calls it.

Gradient scaling across ranks (why ``global_token_count`` is global): DeepSpeed AVERAGES
gradients over the W data-parallel ranks. The loss function divides each micro-batch's sum by
the mini-batch's loss-token count summed over all ranks, so the wanted gradient is the SUM of
the ranks' gradients; the learner therefore multiplies each micro-batch loss by W before
backward (and does not scale by the number of micro-batches), which makes DeepSpeed's mean
equal that sum. Reported losses are the unscaled values summed over micro-batches and ranks.

Every method except ``config``/``step`` reads is COLLECTIVE when W > 1 (all ranks call it with
their own share of the batch): ranks agree on the count of mini- and micro-batches, padding
with zero-weight micro-batches where one rank has fewer.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from policy.batch import (
    LossInputs,
    MicroBatch,
    Sequence,
    collate,
    pack_micro_batches,
    split_mini_batches,
)
from policy.learner_config import LearnerConfig, lr_multiplier
from policy.learner_state import load_learner_state, save_learner_state
from policy.token_logprobs import token_entropy, token_logprobs
from policy.weight_export import export_buckets, plan_buckets

LossFn = Callable[[LossInputs], tuple[torch.Tensor, dict[str, Any]]]
DEFAULT_BUCKET_BYTES = 256 * 1024**2


def init_distributed(on_cuda: bool) -> None:
    """Initialise torch.distributed (nccl on GPU, gloo on CPU) unless already done; defaults
    for a single process: 127.0.0.1, a free port, rank 0 of 1."""
    if dist.is_initialized():
        return
    if "WORLD_SIZE" not in os.environ or os.environ["WORLD_SIZE"] == "1":
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if "MASTER_PORT" not in os.environ:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
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


def _model_config_value(model: nn.Module, key: str, default: Any) -> Any:
    config = getattr(model, "config", None)
    for cfg in (getattr(config, "llm_config", None), config):
        if cfg is not None and getattr(cfg, key, None) is not None:
            return getattr(cfg, key)
    return default


def freeze_parts(model: nn.Module, config: LearnerConfig) -> None:
    """Set requires_grad False on the vision tower / adapter as the config asks."""
    for flag, field, prefix in (
        (config.freeze_vision, "freeze_vision", "vision_model."),
        (config.freeze_adapter, "freeze_adapter", "mlp1."),
    ):
        if not flag:
            continue
        hits = [p for n, p in model.named_parameters() if n.startswith(prefix)]
        if not hits:
            raise ValueError(f"learner.{field}: the model has no {prefix}* parameters to freeze")
        for p in hits:
            p.requires_grad_(False)


class Learner:
    """DeepSpeed training engine around a SAIL-VL2 model (any HF causal LM works for
    ``train_step``/``logprobs``/``export_weights``; ``save`` needs a SAILVLModel + tokenizer)."""

    def __init__(self, model: nn.Module, config: LearnerConfig, *, tokenizer: Any = None) -> None:
        import deepspeed

        self.config = config
        self.tokenizer = tokenizer
        on_cuda = torch.cuda.is_available()
        init_distributed(on_cuda)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.dtype = config.torch_dtype(on_cuda)
        self.is_moe = int(_model_config_value(model, "num_experts", 0) or 0) > 0
        coef = config.router_aux_loss_coef
        self.aux_coef = (
            (
                float(_model_config_value(model, "router_aux_loss_coef", 0.0))
                if coef is None
                else coef
            )
            if self.is_moe
            else 0.0
        )
        freeze_parts(model, config)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            inner = getattr(model, "language_model", None)
            if inner is not None and hasattr(inner, "gradient_checkpointing_enable"):
                inner.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("learner: every parameter is frozen; nothing to train")
        ds_config = deepspeed_config(config, self.dtype, self.world_size)
        optimizer = None
        if config.offload:
            # ZeRO-Offload steps on the CPU with DeepSpeed's own CPU Adam.
            ds_config["optimizer"] = {
                "type": "AdamW",
                "params": {
                    "lr": config.lr,
                    "betas": list(config.betas),
                    "eps": config.eps,
                    "weight_decay": config.weight_decay,
                },
            }
        else:
            optimizer = torch.optim.AdamW(
                trainable,
                lr=config.lr,
                betas=config.betas,
                eps=config.eps,
                weight_decay=config.weight_decay,
            )
        schedule = lambda opt: torch.optim.lr_scheduler.LambdaLR(  # noqa: E731
            opt, lambda step: lr_multiplier(step, config)
        )
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model,
            model_parameters=trainable if optimizer is None else None,
            optimizer=optimizer,
            lr_scheduler=schedule,
            config=ds_config,
        )
        self.module: nn.Module = self.engine.module
        self.device = self.engine.device
        self.step = 0  # optimiser steps applied
        self.skipped_steps = 0  # optimiser steps skipped for a non-finite loss or gradient

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, config: LearnerConfig) -> Learner:
        """A learner on the SAIL-VL2 checkpoint directory ``path`` (weights + tokenizer)."""
        from policy.checkpoint import load_checkpoint

        loaded = load_checkpoint(path)
        loaded.model.train()
        return cls(loaded.model, config, tokenizer=loaded.tokenizer)

    # -- collectives -----------------------------------------------------------------------
    def _all_reduce(
        self, values: list[float], op: dist.ReduceOp = dist.ReduceOp.SUM
    ) -> list[float]:
        if self.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t, op=op)
        return t.tolist()

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def _agree(self, count: int, what: str) -> int:
        low, high = self._all_reduce([-count, count], op=dist.ReduceOp.MAX)
        if -low != high:
            raise RuntimeError(
                f"data-parallel ranks disagree on the number of {what} ({int(-low)} vs "
                f"{int(high)}): give every learner rank the same number of sequences"
            )
        return count

    # -- forward ---------------------------------------------------------------------------
    def _forward(self, mb: MicroBatch, router_logits: bool) -> Any:
        kwargs: dict[str, Any] = {
            "input_ids": mb.input_ids,
            "attention_mask": mb.attention_mask,
            "use_cache": False,
        }
        if mb.position_ids is not None:
            # Packed rows: with no 2D mask, transformers derives a per-sample causal mask from
            # position_ids restarts (any attention backend). Right padding needs no mask in a
            # causal LM: pads come last and only pad positions (never trained) see them.
            kwargs["position_ids"] = mb.position_ids
            kwargs["attention_mask"] = None
        if mb.pixel_values is not None:
            kwargs["pixel_values"] = mb.pixel_values.to(self.dtype)
        if self.is_moe and router_logits:
            kwargs["output_router_logits"] = True
        return self.engine(**kwargs)

    def _micro_plan(self, seqs: SequenceABC[Sequence]) -> list[list[int] | None]:
        groups: list[list[int] | None] = list(
            pack_micro_batches([len(s) for s in seqs], self.config.micro_batch_tokens)
        )
        count = int(self._all_reduce([len(groups)], op=dist.ReduceOp.MAX)[0])
        # None = a zero-weight micro-batch so every rank runs as many forward/backward passes.
        return groups + [None] * (count - len(groups))

    @staticmethod
    def _dummy(seqs: SequenceABC[Sequence]) -> MicroBatch:
        mb = collate(seqs, [0])
        return MicroBatch(
            indices=[],
            input_ids=mb.input_ids,
            attention_mask=mb.attention_mask,
            loss_mask=torch.zeros_like(mb.loss_mask),
            extras=mb.extras,
            pixel_values=mb.pixel_values,
            lengths=mb.lengths,
            position_ids=mb.position_ids,
        )

    # -- training --------------------------------------------------------------------------
    def train_step(self, batch: SequenceABC[Sequence], loss_fn: LossFn) -> dict[str, float]:
        """Train on this rank's share of a batch: one optimiser step per mini-batch.

        Returns metrics averaged over the mini-batches (identical on every rank): ``loss`` and
        the loss_fn's metrics (summed over micro-batches and ranks, so loss_fn metrics must be
        normalised by the global counts like the loss), ``grad_norm``, ``lr``, ``aux_loss``
        (MoE), ``entropy`` (if computed), counts and throughput.
        """
        seqs = list(batch)
        if not seqs:
            raise ValueError("train_step: empty batch")
        if self.config.mini_batch_size and self.config.mini_batch_size % self.world_size:
            raise ValueError(
                f"learner.mini_batch_size {self.config.mini_batch_size} is not divisible by the "
                f"{self.world_size} data-parallel ranks"
            )
        local = self.config.mini_batch_size // self.world_size
        minis = split_mini_batches(len(seqs), local)
        self._agree(len(minis), "mini-batches")
        start = time.perf_counter()
        sums: dict[str, float] = {}
        applied_norms: list[float] = []
        counts = {
            "optimizer_steps": 0.0,
            "skipped_steps": 0.0,
            "tokens": 0.0,
            "loss_tokens": 0.0,
            "padded_tokens": 0.0,
            "micro_batches": 0.0,
        }
        for rows in minis:
            stats = self._train_mini([seqs[i] for i in rows], loss_fn)
            for key, value in stats["metrics"].items():
                sums[key] = sums.get(key, 0.0) + value
            for key in counts:
                counts[key] += stats[key]
            if stats["optimizer_steps"] and stats["grad_norm"] is not None:
                applied_norms.append(stats["grad_norm"])
        elapsed = time.perf_counter() - start
        metrics = {key: value / len(minis) for key, value in sums.items()}
        metrics.update(counts)
        if applied_norms:
            metrics["grad_norm"] = sum(applied_norms) / len(applied_norms)
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        metrics["step"] = float(self.step)
        metrics["skipped_steps_total"] = float(self.skipped_steps)
        metrics["padding_fraction"] = 1.0 - counts["tokens"] / max(1.0, counts["padded_tokens"])
        metrics["time_s"] = elapsed
        metrics["tokens_per_s"] = counts["tokens"] / max(elapsed, 1e-9)
        return metrics

    def _train_mini(self, seqs: list[Sequence], loss_fn: LossFn) -> dict[str, Any]:
        cfg = self.config
        plan = self._micro_plan(seqs)
        loss_tokens, n_seqs, tokens, padded = self._all_reduce(
            [
                sum(s.num_loss_tokens for s in seqs),
                len(seqs),
                sum(len(s) for s in seqs),
                sum(max(len(seqs[i]) for i in g) * len(g) for g in plan if g is not None),
            ]
        )
        self.engine.train()
        local: dict[str, float] = {"loss": 0.0}
        for i, group in enumerate(plan):
            self.engine.set_gradient_accumulation_boundary(i == len(plan) - 1)
            mb = (self._dummy(seqs) if group is None else collate(seqs, group)).to(self.device)
            out = self._forward(mb, router_logits=self.aux_coef > 0)
            logprobs = token_logprobs(out.logits, mb.input_ids, cfg.logits_chunk_tokens)
            entropy = None
            if cfg.entropy != "off":
                with torch.set_grad_enabled(cfg.entropy == "grad"):
                    entropy = token_entropy(out.logits, cfg.logits_chunk_tokens)
            if group is None:
                loss, metrics = logprobs.sum() * 0.0, {}
            else:
                view = LossInputs(
                    logprobs=logprobs,
                    loss_mask=mb.loss_mask,
                    extras=mb.extras,
                    global_token_count=max(1, int(loss_tokens)),
                    global_sequence_count=int(n_seqs),
                    attention_mask=mb.attention_mask,
                    entropy=entropy,
                )
                loss, metrics = loss_fn(view)
            total = loss
            aux = getattr(out, "aux_loss", None)
            if self.aux_coef > 0 and aux is not None:
                # token-weighted mean of the micro-batches' router losses over the mini-batch
                weight = 0.0 if group is None else mb.num_tokens / max(1.0, tokens)
                total = total + self.aux_coef * weight * aux
                local["aux_loss"] = local.get("aux_loss", 0.0) + weight * float(aux.detach())
            if bool(torch.isfinite(total.detach())):
                backward_loss = total * self.world_size
            else:
                # Make every gradient NaN: DeepSpeed's overflow check (all-reduced over ranks)
                # then skips the step on every rank, with no extra synchronisation here.
                backward_loss = logprobs.sum() * float("nan")
            self.engine.backward(backward_loss, scale_wrt_gas=False)
            if group is not None:
                local["loss"] += float(loss.detach())
                for key, value in metrics.items():
                    local[key] = local.get(key, 0.0) + float(value)
                if entropy is not None:
                    masked = (entropy.detach() * mb.loss_mask).sum() / max(1, int(loss_tokens))
                    local["entropy"] = local.get("entropy", 0.0) + float(masked)
        applied, norm = self._optimizer_step()
        keys = self._agreed_keys(local)
        reduced = self._all_reduce([local.get(k, 0.0) for k in keys])
        return {
            "metrics": dict(zip(keys, reduced)),
            "grad_norm": norm,
            "optimizer_steps": float(applied),
            "skipped_steps": float(not applied),
            "tokens": tokens,
            "loss_tokens": loss_tokens,
            "padded_tokens": padded,
            "micro_batches": float(len(plan)),
        }

    def _agreed_keys(self, local: dict[str, float]) -> list[str]:
        if self.world_size == 1:
            return sorted(local)
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, sorted(local))
        return sorted(set().union(*gathered))

    def _optimizer_step(self) -> tuple[bool, float | None]:
        manual = self.config.zero_stage == 0 and self.dtype == torch.float32
        if manual:
            # DeepSpeed's plain-fp32 path neither checks for overflow nor reports the norm;
            # gradients are already all-reduced here, so every rank sees the same norm.
            grads = [p.grad for p in self.module.parameters() if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            if not torch.isfinite(torch.tensor(norm)):
                self.engine.zero_grad()
                self.skipped_steps += 1
                return False, norm
        self.engine.step()
        applied = bool(self.engine.was_step_applied())
        if not manual:
            value = self.engine.get_global_grad_norm()
            norm = None if value is None else float(value)
        if applied:
            self.step += 1
        else:
            self.skipped_steps += 1
        return applied, norm

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def logprobs(self, batch: SequenceABC[Sequence]) -> list[torch.Tensor]:
        """Per-sequence float32 CPU log-probs of each token under the current weights,
        ``len(input_ids)`` long, position 0 = 0.0 (see policy.batch). No gradients."""
        seqs = list(batch)
        out: list[torch.Tensor | None] = [None] * len(seqs)
        # Collective even with no sequences: every rank must agree on the micro-batch count
        # (a rank with none skips its passes; under ZeRO-3 give every rank at least one).
        plan = self._micro_plan(seqs)
        self.engine.eval()
        try:
            for group in plan:
                if group is None and not seqs:
                    continue
                mb = (self._dummy(seqs) if group is None else collate(seqs, group)).to(self.device)
                lp = token_logprobs(
                    self._forward(mb, router_logits=False).logits,
                    mb.input_ids,
                    self.config.logits_chunk_tokens,
                ).cpu()
                for row, idx in enumerate(group or []):
                    out[idx] = lp[row, : mb.lengths[row]].clone()
        finally:
            self.engine.train()
        return out  # type: ignore[return-value]

    # -- weights ---------------------------------------------------------------------------
    def _has_frozen(self) -> bool:
        return any(not p.requires_grad for p in self.module.parameters())

    def export_weights(
        self,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        *,
        trainable_only: bool | None = None,
        device: torch.device | str = "cpu",
    ) -> Iterator[list[tuple[str, torch.Tensor]]]:
        """Yield buckets of (public SAIL-VL2 name, detached copy on ``device``), each at most
        ``bucket_bytes`` unless it is one oversized tensor. ``trainable_only`` None: only the
        trainable parameters when part of the model is frozen. Collective under ZeRO-3."""
        if trainable_only is None:
            trainable_only = self._has_frozen()
        for bucket in export_buckets(
            self.module,
            bucket_bytes,
            trainable_only=trainable_only,
            zero3=self.config.zero_stage == 3,
            device=device,
        ):
            public = self._public_names(bucket)
            sizes = [(str(i), t.numel() * t.element_size()) for i, (_, t) in enumerate(public)]
            for group in plan_buckets(sizes, bucket_bytes):
                yield [public[int(i)] for i in group]

    def _public_names(
        self, bucket: list[tuple[str, torch.Tensor]]
    ) -> list[tuple[str, torch.Tensor]]:
        config = getattr(self.module, "config", None)
        if getattr(config, "llm_config", None) is None:
            return bucket
        from policy.checkpoint import checkpoint_tensors

        # checkpoint_tensors holds the one in-memory -> public name map (per-expert MoE
        # weights); feed it this bucket through a minimal model-shaped view.
        view = _TensorsView(config, dict(bucket))
        return [(n, t.contiguous()) for n, t in checkpoint_tensors(view)]  # type: ignore[arg-type]

    def state_dict_for_save(self, *, rank0_only: bool = True) -> dict[str, torch.Tensor]:
        """All weights as {public name: CPU tensor} (gathered under ZeRO-3, a collective);
        ranks other than 0 get {} when ``rank0_only``."""
        return self._gather_weights(public=True, rank0_only=rank0_only)

    def _gather_weights(self, *, public: bool, rank0_only: bool = True) -> dict[str, torch.Tensor]:
        full: dict[str, torch.Tensor] = {}
        keep = self.rank == 0 or not rank0_only
        for bucket in export_buckets(
            self.module, DEFAULT_BUCKET_BYTES, zero3=self.config.zero_stage == 3
        ):
            if keep:
                full.update(self._public_names(bucket) if public else bucket)
        return full

    def _load_weights(self, weights: dict[str, torch.Tensor], source: Path) -> None:
        """Copy in-memory-named ``weights`` into the (possibly partitioned) parameters."""
        params = dict(self.module.named_parameters())
        missing = sorted(set(params) - set(weights))
        if missing:
            raise ValueError(
                f"weights in {source} lack {len(missing)} parameters, e.g. {missing[:3]}"
            )
        names = list(params)
        sizes = [(n, int(weights[n].numel()) * weights[n].element_size()) for n in names]
        for group in plan_buckets(sizes, DEFAULT_BUCKET_BYTES):
            tensors = [params[n] for n in group]
            if self.config.zero_stage == 3:
                import deepspeed

                with deepspeed.zero.GatheredParameters(tensors, modifier_rank=0):
                    if self.rank == 0:
                        self._copy_into(group, tensors, weights, source)
            else:
                self._copy_into(group, tensors, weights, source)

    @staticmethod
    def _copy_into(
        names: list[str], params: list[torch.Tensor], weights: dict[str, torch.Tensor], source: Path
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

    def save(self, directory: str | os.PathLike) -> None:
        """Write a loadable SAIL-VL2 checkpoint (rank 0) plus this learner's optimiser,
        scheduler, RNG and counters (every rank) into ``directory``. Collective."""
        save_learner_state(self, Path(directory))

    def load(self, directory: str | os.PathLike) -> None:
        """Restore what ``save`` wrote; errors name the missing or corrupt file. Collective."""
        load_learner_state(self, Path(directory))


class _TensorsView:
    """Just enough of a model (``config`` and ``state_dict()``) for policy.checkpoint."""

    def __init__(self, config: Any, tensors: dict[str, torch.Tensor]) -> None:
        self.config = config
        self._tensors = tensors

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._tensors
