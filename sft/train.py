"""The SFT training loop (LongCoT and Think-Fusion) on the policy learner.

    stream = SFTStream(load_sft_examples(cfg.train_files), cfg.mode, cfg.seed, ...)
    total = plan_total_steps(cfg, stream.epoch_size)
    learner = Learner.from_pretrained(ckpt, learner_config_for(cfg, base_learner_cfg, total))
    state = train(cfg, learner, processor, runlog, stream=stream, save=save_fn, start=resume)

Each step takes the next ``batch_size`` examples of the stream, tokenises them (prompt from the
policy processor, loss mask by mode), packs them into rows when packing is on, and runs one
``learner.train_step`` with the token-mean NLL. The caller owns checkpoint directories: ``save``
receives the ``SFTState`` (step + data cursor) to store beside ``learner.save(dir)``, and a
resumed run passes it back as ``start``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from policy.batch import Sequence as TrainSequence
from policy.learner_config import LearnerConfig
from policy.vocab import MODES
from sft.config import SFTConfig
from sft.data import Cursor, SFTStream, load_sft_examples
from sft.encoding import encode_batch, encode_example
from sft.loss import nll_loss
from sft.packing import SFTSample, pack_groups, pack_samples

# Per-token extra telling the loss which tokens belong to think-mode samples.
THINK_EXTRA = "think"


@dataclass(frozen=True)
class SFTState:
    """What a checkpoint must keep to resume SFT: steps done and the data cursor."""

    step: int = 0
    cursor: Cursor = Cursor()

    def to_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.cursor.epoch, "position": self.cursor.position}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SFTState:
        return cls(int(data["step"]), Cursor(int(data["epoch"]), int(data["position"])))


def plan_total_steps(cfg: SFTConfig, epoch_size: int) -> int:
    """Optimizer steps of the stage: ``max_steps``, else ``epochs`` over the epoch size."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * epoch_size / cfg.batch_size))


def learner_config_for(cfg: SFTConfig, base: LearnerConfig, total_steps: int) -> LearnerConfig:
    """``base`` with the SFT stage's optimiser schedule; one optimiser step per SFT batch."""
    return dataclasses.replace(
        base,
        lr=cfg.lr,
        schedule=cfg.schedule,
        warmup_steps=cfg.warmup_steps,
        total_steps=total_steps,
        min_lr_ratio=cfg.min_lr_ratio,
        mini_batch_size=0,
    )


def to_train_sequences(samples: Sequence[SFTSample], pack_budget: int) -> list[TrainSequence]:
    """Learner sequences of ``samples``: packed rows (position ids restarting per sample)
    when ``pack_budget`` > 0, else one sequence per sample. Each carries the per-token extra
    ``think`` (1.0 on tokens of think-mode samples) so the loss can report both modes."""
    if pack_budget:
        groups = pack_groups([len(s) for s in samples], pack_budget)
    else:
        groups = [[i] for i in range(len(samples))]
    out = []
    for group in groups:
        members = [samples[i] for i in group]
        row = pack_samples(members)
        think = [1.0 if s.mode == "think" else 0.0 for s in members for _ in range(len(s))]
        kwargs: dict[str, Any] = {}
        if pack_budget:
            kwargs["position_ids"] = row.position_ids.tolist()
        out.append(
            TrainSequence(
                input_ids=row.input_ids.tolist(),
                loss_mask=[int(m) for m in row.loss_mask.tolist()],
                pixel_values=row.pixel_values,
                extras={THINK_EXTRA: think},
                **kwargs,
            )
        )
    return out


def mode_losses(metrics: dict[str, float]) -> dict[str, float]:
    """``loss_think`` / ``loss_direct`` from the per-mode sums of ``nll_loss``."""
    out = {}
    for mode in MODES:
        tokens = metrics.get(f"tokens_{mode}", 0.0)
        if tokens:
            out[f"loss_{mode}"] = metrics[f"nll_{mode}_sum"] / tokens
    return out


def evaluate_nll(
    learner: Any, processor: Any, examples: Sequence[Any], batch_size: int
) -> dict[str, float]:
    """Token-mean NLL of ``examples`` (overall and per mode) under the learner's weights."""
    sums = {"think": [0.0, 0.0], "direct": [0.0, 0.0]}
    for start in range(0, len(examples), batch_size):
        samples = [encode_example(processor, e) for e in examples[start : start + batch_size]]
        seqs = to_train_sequences(samples, pack_budget=0)
        for sample, logprobs in zip(samples, learner.logprobs(seqs)):
            mask = torch.tensor(sample.loss_mask, dtype=torch.float32)
            sums[sample.mode][0] += float(-(logprobs * mask).sum())
            sums[sample.mode][1] += float(mask.sum())
    nll = sum(v[0] for v in sums.values())
    tokens = sum(v[1] for v in sums.values())
    out = {"eval_loss": nll / max(1.0, tokens), "eval_tokens": tokens}
    for mode, (total, count) in sums.items():
        if count:
            out[f"eval_loss_{mode}"] = total / count
    return out


def _check_learner(cfg: SFTConfig, learner: Any, total_steps: int) -> None:
    lc = getattr(learner, "config", None)
    if lc is None:
        return
    if lc.mini_batch_size:
        raise ValueError(
            f"learner.mini_batch_size is {lc.mini_batch_size}; SFT takes one optimiser step per "
            "sft.batch_size examples: build the learner with sft.train.learner_config_for(...)"
        )
    if (
        lc.lr != cfg.lr
        or lc.schedule != cfg.schedule
        or (cfg.schedule == "cosine" and lc.total_steps != total_steps)
    ):
        raise ValueError(
            f"learner schedule (lr={lc.lr}, {lc.schedule}, total_steps={lc.total_steps}) differs "
            f"from sft (lr={cfg.lr}, {cfg.schedule}, total_steps={total_steps}): build the "
            "learner with sft.train.learner_config_for(sft_cfg, learner_cfg, total_steps)"
        )


def train(
    cfg: SFTConfig,
    learner: Any,
    processor: Any,
    runlog: Any,
    *,
    stream: SFTStream | None = None,
    eval_examples: Sequence[Any] | None = None,
    save: Callable[[SFTState], None] | None = None,
    start: SFTState | None = None,
) -> SFTState:
    """Run the SFT stage from ``start`` (default: the beginning) to its last step.

    ``learner`` has ``train_step(seqs, loss_fn)`` and ``logprobs(seqs)`` (policy.learner);
    ``runlog`` has ``log(step, metrics)`` and ``progress(total, desc)``; ``save(state)`` is
    called every ``save_every`` steps and after the last one. ``stream`` / ``eval_examples``
    default to the config's files. Returns the final state.
    """
    if stream is None:
        stream = SFTStream(
            load_sft_examples(cfg.train_files, cfg.read_options()),
            cfg.mode,
            cfg.seed,
            cfg.cot_fraction,
            cfg.fusion_epoch_size,
        )
    if eval_examples is None and cfg.eval_files:
        eval_examples = load_sft_examples(cfg.eval_files, cfg.read_options())
    total = plan_total_steps(cfg, stream.epoch_size)
    _check_learner(cfg, learner, total)
    state = start or SFTState()
    bar = runlog.progress(total, f"sft {cfg.mode}")
    if state.step:
        bar.update(state.step)
    batches = stream.batches(cfg.batch_size, state.cursor)
    try:
        while state.step < total:
            examples, cursor = next(batches)
            samples, skipped = encode_batch(processor, examples, cfg.max_seq_len)
            row: dict[str, Any] = {
                "skipped_too_long": skipped,
                "epoch": _epoch_float(cursor, stream),
            }
            if samples:
                seqs = to_train_sequences(samples, cfg.pack_budget)
                metrics = learner.train_step(seqs, nll_loss)
                row.update(
                    loss=metrics["loss"],
                    lr=metrics.get("lr"),
                    grad_norm=metrics.get("grad_norm"),
                    tokens=metrics.get("tokens"),
                    loss_tokens=metrics.get("loss_tokens"),
                    rows=len(seqs),
                    cot_share=sum(s.mode == "think" for s in samples) / len(samples),
                    **mode_losses(metrics),
                )
            state = SFTState(state.step + 1, cursor)
            last = state.step == total
            if last or state.step % cfg.log_every == 0:
                runlog.log(state.step, {k: v for k, v in row.items() if v is not None})
            if eval_examples and cfg.eval_every and (last or state.step % cfg.eval_every == 0):
                runlog.log(
                    state.step, evaluate_nll(learner, processor, eval_examples, cfg.eval_batch_size)
                )
            if save is not None and (last or (cfg.save_every and state.step % cfg.save_every == 0)):
                save(state)
            bar.update(1)
    finally:
        bar.close()
    return state


def _epoch_float(cursor: Cursor, stream: SFTStream) -> float:
    return cursor.epoch + cursor.position / max(1, stream.epoch_size)
