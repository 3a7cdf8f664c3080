"""Configuration of the SFT stages (LongCoT and Think-Fusion), as plain dataclasses that
``rl.config.load_config`` fills from YAML (sft/ never imports rl)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from policy.data import ReadOptions


@dataclass
class SFTConfig:
    """One SFT stage.

    ``mode``: ``longcot`` trains on every example of ``train_files`` once per epoch (shuffled);
    ``fusion`` (Think-Fusion) interleaves the direct-mode and think-mode examples of
    ``train_files`` so that a fraction ``cot_fraction`` of each epoch is CoT (0.1 = the
    report's ~9:1 direct:CoT), each example's own ``mode`` choosing its prompt and loss mask.

    A step consumes ``batch_size`` examples (the global batch), packed into rows of at most
    ``pack_budget`` tokens (0: one row per example). Examples longer than ``max_seq_len``
    tokens are skipped and counted (metric ``skipped_too_long``).
    """

    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    mode: Literal["longcot", "fusion"] = "longcot"
    cot_fraction: float = 0.1
    # Fusion epoch length in examples; None: the longest epoch in which no example repeats.
    fusion_epoch_size: int | None = None
    epochs: int = 1
    # When set, training stops after this many steps (it may then end mid-epoch or run past
    # ``epochs``); the schedule spans max_steps.
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-6
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    # Packed rows need a learner that forwards per-sequence position ids (see docs/sft.md).
    pack_budget: int = 0
    max_seq_len: int = 4096
    log_every: int = 1
    save_every: int = 0
    eval_every: int = 0
    eval_batch_size: int = 16
    seed: int = 0
    # How train/eval files are read (docs/data.md): their schema (null: detected from the
    # columns), sailrl key -> column name, and what a bad row does (error | skip).
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    on_bad_row: Literal["error", "skip"] = "error"
    max_bad_fraction: float = 0.01
    image_root: str | None = None  # relative image paths: default, each data file's directory

    def read_options(self) -> ReadOptions:
        return ReadOptions(
            self.format, self.columns, self.on_bad_row, self.max_bad_fraction, self.image_root
        )

    def __post_init__(self) -> None:
        self.read_options()  # validates format, columns and the bad-row settings
        if not 0.0 <= self.cot_fraction <= 1.0:
            raise ValueError(
                f"cot_fraction: must lie in [0, 1] (0.1 = 9:1 direct:CoT), got {self.cot_fraction}"
            )
        if self.fusion_epoch_size is not None and self.fusion_epoch_size <= 0:
            raise ValueError(
                f"fusion_epoch_size: must be positive or null, got {self.fusion_epoch_size}"
            )
        for name in ("epochs", "batch_size", "max_seq_len", "log_every", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"max_steps: must be positive or null, got {self.max_steps}")
        for name in ("pack_budget", "warmup_steps", "save_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.pack_budget and self.pack_budget < self.max_seq_len:
            raise ValueError(
                f"pack_budget: {self.pack_budget} is below max_seq_len {self.max_seq_len}; "
                "raise it (or set 0 to disable packing) so every kept example fits a row"
            )
        if self.lr <= 0:
            raise ValueError(f"lr: must be positive, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio: must lie in [0, 1], got {self.min_lr_ratio}")
