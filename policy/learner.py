"""The DeepSpeed learner: train steps with an injected loss, log-prob recompute, bucketed
weight export and save/load. Ray-free: the rl package places one instance per data-parallel
rank (MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE set in the environment) and calls it.

Gradient scaling across ranks (why ``global_token_count`` is global): DeepSpeed AVERAGES
gradients over the W data-parallel ranks. The loss function divides each micro-batch's sum by
the mini-batch's loss-token count summed over all ranks, so the wanted gradient is the SUM of
the ranks' gradients; the learner therefore multiplies each micro-batch loss by W before
backward (and does not scale by the number of micro-batches), which makes DeepSpeed's mean
equal that sum.

Metrics follow ``policy.metrics``: each carries its reduction, and the learner reduces once,
over micro-batches and ranks, so a metric does not depend on how the batch was split.

Every method except ``config``/``step`` reads is COLLECTIVE when W > 1 (all ranks call it with
their own share of the batch): ranks agree on the count of mini- and micro-batches, padding
with zero-weight micro-batches where one rank has fewer.
"""

from __future__ import annotations

import copy
import os
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
    split_mini_batches,
)
from policy.learner_config import LearnerConfig, lr_multiplier
from policy.learner_forward import (
    filled_positions,
    mask_kind,
    members,
    packed_logprobs,
    plan_micro_batches,
    positions,
    shares,
)
from policy.learner_reference import is_zero3, reference_model
from policy.learner_setup import deepspeed_config, init_distributed
from policy.learner_state import load_learner_state, save_learner_state
from policy.loss_inputs import has_dropout, loss_needs, pad_rows
from policy.metrics import Metric, MetricSums, over_mini_batches
from policy.shared_prefix import Unit
from policy.token_logprobs import token_entropy, token_logprobs
from policy.weight_export import _TensorsView, export_buckets, load_into, plan_buckets

LossFn = Callable[[LossInputs], tuple[torch.Tensor, dict[str, Metric | float]]]
DEFAULT_BUCKET_BYTES = 256 * 1024**2


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
        # The reference policy: the weights this learner starts from, frozen (a later
        # ``load`` of a resumed run does not touch it, so it stays the stage's start).
        self.reference: nn.Module | None = None
        reference = copy.deepcopy(model) if config.reference else None
        self.dropout = has_dropout(model)
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
        self.mask_kind = mask_kind(self.module)  # None: no shared-prefix rows
        self.device = self.engine.device
        if reference is not None:
            self.reference = reference_model(reference, config, self.dtype, self.device)
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
    def _forward(self, mb: MicroBatch, router_logits: bool, model: Any = None) -> Any:
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
        return (self.engine if model is None else model)(**kwargs)

    def _share(self, seqs: SequenceABC[Sequence], router_logits: bool) -> bool:
        """Shared-prefix rows for this batch? Not for packed rows, attention without 4D
        masks, or MoE router losses (they would count a shared prompt once)."""
        return (
            self.config.shared_prefix
            and self.mask_kind is not None
            and not (router_logits and self.aux_coef > 0)
            and all(s.position_ids is None for s in seqs)
        )

    def _micro_logprobs(
        self,
        seqs: SequenceABC[Sequence],
        units: list[Unit] | None,
        mb: MicroBatch,
        *,
        loss_only: bool,
        router_logits: bool = False,
        entropy: str = "off",
        model: Any = None,
    ) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
        """Output, (B, T) log-probs, entropy or None; shared-prefix rows: wanted tokens only."""
        chunk = self.config.logits_chunk_tokens
        if units is not None and shares(units):
            return packed_logprobs(
                lambda kwargs: (self.engine if model is None else model)(**kwargs),
                seqs,
                units,
                (mb.input_ids.shape[0], mb.input_ids.shape[1]),
                loss_only=loss_only,
                kind=self.mask_kind,  # type: ignore[arg-type]
                dtype=self.dtype,
                device=self.device,
                chunk=chunk,
                entropy=entropy,
            )
        out = self._forward(mb, router_logits=router_logits, model=model)
        logprobs = token_logprobs(out.logits, mb.input_ids, chunk)
        ent = None
        if entropy != "off":
            with torch.set_grad_enabled(entropy == "grad" and torch.is_grad_enabled()):
                ent = token_entropy(out.logits, chunk)
        return out, logprobs, ent

    def _micro_plan(self, seqs: SequenceABC[Sequence], share: bool) -> list[list[Unit] | None]:
        groups: list[list[Unit] | None] = list(
            plan_micro_batches(seqs, self.config.micro_batch_tokens, share)
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

        ``loss_fn.needs`` (optional, see ``policy.loss_inputs``) names the inputs the loss
        wants beyond the batch: old logprobs (the weights at the start of this call) and
        reference logprobs are computed here, on this rank's shard, before the first update.

        Returns metrics identical on every rank: the loss_fn's metrics and ``loss``,
        ``aux_loss`` (MoE), ``entropy`` (if computed), each reduced once over the micro-batches
        and ranks of a mini-batch by its own reduction (``policy.metrics``), then averaged over
        the mini-batches (min/max: the extreme); ``grad_norm``, ``lr``, counts and throughput.
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
        computed, reuse_old = self._loss_inputs(seqs, loss_fn, len(minis))
        rows_out: list[dict[str, float]] = []
        kinds: dict[str, str] = {}
        applied_norms: list[float] = []
        counts = {
            "optimizer_steps": 0.0,
            "skipped_steps": 0.0,
            "tokens": 0.0,
            "loss_tokens": 0.0,
            "padded_tokens": 0.0,
            "forward_tokens": 0.0,
            "micro_batches": 0.0,
        }
        for rows in minis:
            part = {k: [v[i] for i in rows] for k, v in computed.items()}
            stats = self._train_mini([seqs[i] for i in rows], loss_fn, part, reuse_old)
            rows_out.append(stats["metrics"])
            kinds.update(stats["kinds"])
            for key in counts:
                counts[key] += stats[key]
            if stats["optimizer_steps"] and stats["grad_norm"] is not None:
                applied_norms.append(stats["grad_norm"])
        elapsed = time.perf_counter() - start
        metrics = over_mini_batches(rows_out, kinds)
        metrics.update(counts)
        if applied_norms:
            metrics["grad_norm"] = sum(applied_norms) / len(applied_norms)
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        metrics["step"] = float(self.step)
        metrics["skipped_steps_total"] = float(self.skipped_steps)
        # the positions run that hold no token (a shared prompt's count once)
        metrics["padding_fraction"] = 1.0 - counts["forward_tokens"] / max(
            1.0, counts["padded_tokens"]
        )
        metrics["time_s"] = elapsed
        metrics["tokens_per_s"] = counts["tokens"] / max(elapsed, 1e-9)
        return metrics

    def _loss_inputs(
        self, seqs: list[Sequence], loss_fn: LossFn, n_minis: int
    ) -> tuple[dict[str, list[torch.Tensor]], bool]:
        """Per-sequence old/reference logprobs the loss needs, and whether the old ones are
        taken from the training forward instead (exactly equal there: the first and only
        mini-batch runs on the weights of the call's start, and no dropout makes the training
        forward differ from an eval pass)."""
        needs = loss_needs(loss_fn)
        missing = [k for k in ("rollout_logprobs",) if k in needs and k not in seqs[0].extras]
        if missing:
            raise ValueError(f"the loss needs {missing} in every Sequence.extras")
        computed: dict[str, list[torch.Tensor]] = {}
        if "ref_logprobs" in needs:
            if self.reference is None:
                raise ValueError(
                    "the loss needs reference logprobs but this learner holds no reference "
                    "model: set learner.reference: true"
                )
            computed["ref_logprobs"] = self.logprobs(seqs, model=self.reference)
        reuse_old = False
        if "old_logprobs" in needs:
            reuse_old = self.config.old_logprobs == "auto" and n_minis == 1 and not self.dropout
            if not reuse_old:
                computed["old_logprobs"] = self.logprobs(seqs)
        return computed, reuse_old

    def _train_mini(
        self,
        seqs: list[Sequence],
        loss_fn: LossFn,
        computed: dict[str, list[torch.Tensor]],
        reuse_old: bool,
    ) -> dict[str, Any]:
        cfg = self.config
        router_logits = self.aux_coef > 0
        plan = self._micro_plan(seqs, self._share(seqs, router_logits))
        # Sequences without a loss token (masked truncations) do not count for seq means.
        loss_tokens, n_seqs, tokens, padded, forward = self._all_reduce(
            [
                sum(s.num_loss_tokens for s in seqs),
                sum(1 for s in seqs if s.num_loss_tokens),
                sum(len(s) for s in seqs),
                sum(positions(g, seqs) for g in plan if g is not None),
                sum(filled_positions(g, seqs) for g in plan if g is not None),
            ]
        )
        self.engine.train()
        sums = MetricSums()
        for i, group in enumerate(plan):
            self.engine.set_gradient_accumulation_boundary(i == len(plan) - 1)
            rows = None if group is None else members(group)
            mb = (self._dummy(seqs) if rows is None else collate(seqs, rows)).to(self.device)
            out, logprobs, entropy = self._micro_logprobs(
                seqs, group, mb, loss_only=True, router_logits=router_logits, entropy=cfg.entropy
            )
            if rows is None:
                loss, metrics = logprobs.sum() * 0.0, {}
            else:
                width = mb.input_ids.shape[1]
                extras = dict(mb.extras)
                for key, values in computed.items():
                    extras[key] = pad_rows(values, rows, width).to(self.device)
                if reuse_old:
                    extras["old_logprobs"] = logprobs.detach()
                view = LossInputs(
                    logprobs=logprobs,
                    loss_mask=mb.loss_mask,
                    extras=extras,
                    global_token_count=max(1, int(loss_tokens)),
                    global_sequence_count=max(1, int(n_seqs)),
                    attention_mask=mb.attention_mask,
                    entropy=entropy,
                )
                loss, metrics = loss_fn(view)
            total = loss
            aux = getattr(out, "aux_loss", None)
            if self.aux_coef > 0 and aux is not None:
                # token-weighted mean of the micro-batches' router losses over the mini-batch
                weight = 0.0 if rows is None else mb.num_tokens / max(1.0, tokens)
                total = total + self.aux_coef * weight * aux
                sums.add({"aux_loss": Metric.sum(weight * float(aux.detach()))})
            if bool(torch.isfinite(total.detach())):
                backward_loss = total * self.world_size
            else:
                # Make every gradient NaN: DeepSpeed's overflow check (all-reduced over ranks)
                # then skips the step on every rank, with no extra synchronisation here.
                backward_loss = logprobs.sum() * float("nan")
            self.engine.backward(backward_loss, scale_wrt_gas=False)
            if rows is not None:
                sums.add({"loss": Metric.sum(float(loss.detach())), **metrics})
                if entropy is not None:
                    n = float(mb.loss_mask.sum())
                    mean = float((entropy.detach() * mb.loss_mask).sum()) / max(n, 1.0)
                    sums.add({"entropy": Metric.token_mean(mean, n)})
            # Free this micro-batch's logits and activations before the next forward (they
            # would otherwise live through it: a second micro-batch's worth of peak memory).
            del out, logprobs, entropy, loss, total, backward_loss, mb
        applied, norm = self._optimizer_step()
        kinds = self._agreed_kinds(sums.kinds())
        sums.all_reduce(
            kinds,
            self._all_reduce,
            lambda values: self._all_reduce(values, op=dist.ReduceOp.MAX),
        )
        return {
            "metrics": sums.result(),
            "kinds": dict(kinds),
            "grad_norm": norm,
            "optimizer_steps": float(applied),
            "skipped_steps": float(not applied),
            "tokens": tokens,
            "loss_tokens": loss_tokens,
            "padded_tokens": padded,
            "forward_tokens": forward,
            "micro_batches": float(len(plan)),
        }

    def _agreed_kinds(self, kinds: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.world_size == 1:
            return kinds
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, kinds)
        union = sorted({tuple(pair) for rank in gathered for pair in rank})
        names = [n for n, _ in union]
        if len(names) != len(set(names)):
            raise RuntimeError(f"ranks report a metric with different reductions: {union}")
        return union  # type: ignore[return-value]

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
    def logprobs(
        self, batch: SequenceABC[Sequence], *, model: nn.Module | None = None
    ) -> list[torch.Tensor]:
        """Per-sequence float32 CPU log-probs of each token under the current weights (or
        ``model``'s, e.g. ``self.reference``), ``len(input_ids)`` long, position 0 = 0.0 (see
        policy.batch). No gradients."""
        seqs = list(batch)
        out: list[torch.Tensor | None] = [None] * len(seqs)
        # Collective even with no sequences: every rank must agree on the micro-batch count
        # (a rank with none skips its passes; under ZeRO-3 give every rank at least one).
        plan = self._micro_plan(seqs, self._share(seqs, router_logits=False))
        self.engine.eval()
        try:
            for group in plan:
                # a separate unsharded model needs no zero-weight passes to line ranks up; a
                # ZeRO-3 one (the policy, a sharded reference) gathers weights collectively
                separate = model is not None and not is_zero3(model)
                if group is None and (not seqs or separate):
                    continue
                rows = [] if group is None else members(group)
                mb = (self._dummy(seqs) if group is None else collate(seqs, rows)).to(self.device)
                _, lp, _ = self._micro_logprobs(seqs, group, mb, loss_only=False, model=model)
                lp = lp.cpu()
                for row, idx in enumerate(rows):
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
        load_into(self.module, weights, source, zero3=self.config.zero_stage == 3, rank=self.rank)

    def save(self, directory: str | os.PathLike) -> None:
        """Write a loadable SAIL-VL2 checkpoint (rank 0) plus this learner's optimiser,
        scheduler, RNG and counters (every rank) into ``directory``. Collective."""
        save_learner_state(self, Path(directory))

    def load(self, directory: str | os.PathLike) -> None:
        """Restore what ``save`` wrote; errors name the missing or corrupt file. Collective."""
        load_learner_state(self, Path(directory))
