"""The RL experiment's configuration: one YAML per experiment, one section per package.

    run:      where the run directory goes, seed
    model:    the starting SAIL-VL2 checkpoint (or a preset to build a fresh tiny one)
    data:     train and held-out prompt files (policy.data schema)
    rl:       the loop: steps, prompts per step, group size, generation length, eval/save
    algo:     rl.algos.AlgoConfig (advantage, loss, KL, TIS, dynamic sampling)
    learner:  policy.learner_config.LearnerConfig (ZeRO stage, lr, batching)
    rollout:  rollout.config.RolloutConfig (vLLM engine settings; model is filled in)
    rewards:  rewards.RewardsConfig (reward sets, routing, runtime)
    ray:      rl.run.resources.RayConfig (address, per-actor resources)

``load_experiment(path, overrides)`` returns an ``ExperimentConfig``; every mistake is a
ConfigError naming the dotted key.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from policy.learner_config import LearnerConfig
from policy.vocab import MODES, Mode
from rewards import RewardsConfig
from rl.algos import AlgoConfig
from rl.config import ConfigError, load_config
from rl.run.resources import RayConfig
from rl.run.runlog import WandbConfig
from rl.tasks import TaskConfig
from rollout.config import RolloutConfig


@dataclass
class RunConfig:
    name: str = "rl"
    dir: str | None = None  # default: runs/<name>
    seed: int = 0
    wandb: WandbConfig | None = None  # also log to Weights & Biases (rl.run.runlog)

    @property
    def path(self) -> Path:
        return Path(self.dir) if self.dir else Path("runs") / self.name


@dataclass
class ModelSource:
    """Start from ``path`` (a SAIL-VL2 checkpoint dir) or build ``preset`` fresh (tiny runs)."""

    path: str | None = None
    preset: str | None = None
    seed: int = 0
    # Top-level config keys of a fresh preset build, e.g. {force_image_size: 224}.
    overrides: dict[str, Any] = field(default_factory=dict)
    # Attention of the language model (eager, sdpa, flash_attention_2, ...) instead of what
    # llm_config asks for; None: the checkpoint's own when this machine has it, else sdpa.
    attn_implementation: str | None = None

    def __post_init__(self) -> None:
        if bool(self.path) == bool(self.preset):
            raise ValueError("model: set exactly one of model.path (a checkpoint) or model.preset")

    def prepare(self, run_dir: Path) -> str:
        """The starting checkpoint dir: ``path`` (checked here, so a bad one fails before any
        actor starts), or a fresh ``preset`` build in ``<run_dir>/init-model`` (made once)."""
        # policy.checkpoint (transformers) only where a checkpoint is read or built: a run
        # from an existing preset build starts its actors without waiting for that import.
        from policy.checkpoint_error import CheckpointError
        from rl.run.checkpoint import resolve_reference
        from rl.run.preflight import SOURCE_FILE, check_init_model, model_source

        if self.attn_implementation:
            from policy.checkpoint import ATTN_ENV

            # Read by load_checkpoint in this process and in the processes it starts.
            os.environ[ATTN_ENV] = self.attn_implementation
        if self.path:
            from policy.checkpoint import load_config

            try:
                path = str(resolve_reference(self.path))  # `latest`, a step, a run dir
                load_config(path)
            except (CheckpointError, RuntimeError) as err:
                raise ConfigError(f"model.path: {err}") from err
            return path
        check_init_model(self, run_dir)
        target = run_dir / "init-model"
        if not (target / "config.json").exists():
            from policy.checkpoint import init_checkpoint

            init_checkpoint(self.preset, target, seed=self.seed, **self.overrides)
            # What it was built from, so that a later run with another preset is refused.
            (target / SOURCE_FILE).write_text(json.dumps(model_source(self)))
        return str(target)


@dataclass
class DataConfig:
    """Prompt files (policy.data schema), or ``synthetic`` to generate the demo tasks into
    ``<run>/data`` (then train/eval default to its rl.jsonl / eval.jsonl)."""

    train: str = ""
    eval: str | None = None
    # "as-data": each example's own mode; "think"/"direct": force every prompt's mode.
    mode: Literal["as-data", "think", "direct"] = "as-data"
    synthetic: TaskConfig | None = None
    # How the files are read (docs/data.md): schema (null: detected from the columns),
    # sailrl key -> column name, and what a bad row does (error | skip, up to a fraction).
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    on_bad_row: Literal["error", "skip"] = "error"
    max_bad_fraction: float = 0.01
    image_root: str | None = None  # relative image paths: default, each data file's directory

    def read_options(self):
        from policy.data import ReadOptions

        return ReadOptions(
            self.format, self.columns, self.on_bad_row, self.max_bad_fraction, self.image_root
        )

    def __post_init__(self) -> None:
        self.read_options()  # validates format, columns and the bad-row settings
        if not self.train and self.synthetic is None:
            raise ValueError(
                "data.train: name the training prompts file (JSONL or parquet), or set "
                "data.synthetic to generate the synthetic tasks"
            )

    def resolve(self, run_dir: Path) -> DataConfig:
        """Generate the synthetic data if asked (once) and fill in the paths."""
        if self.synthetic is None:
            return self
        from rl.tasks import ensure_dataset

        target = ensure_dataset(self.synthetic, run_dir / "data")
        return replace(
            self,
            train=self.train or str(target / "rl.jsonl"),
            eval=self.eval or str(target / "eval.jsonl"),
        )


@dataclass
class LoopConfig:
    """The driver loop. One step = prompts_per_step prompts x group_size samples."""

    steps: int = 10
    prompts_per_step: int = 8
    group_size: int = 4
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    num_learners: int = 1
    num_rollout_engines: int = 1
    # Generate step t+1 while step t trains (its samples are one weight version stale).
    overlap: bool = False
    eval_every: int = 0  # 0: only after the last step (when data.eval is set)
    eval_samples: int = 1  # k: accuracy is the mean over k samples per prompt
    eval_temperature: float = 0.0
    eval_max_prompts: int = 256
    eval_modes: list[Mode] = field(default_factory=lambda: list(MODES))
    save_every: int = 0  # 0: only after the last step
    keep_checkpoints: int = 2
    log_samples: int = 4  # completions per step written to samples.jsonl
    sync_bucket_mb: int = 64
    probe_parity: bool = True  # after each sync, compare engine vs learner logprobs
    parity_tolerance: float = 1e-3
    fail_on_parity: bool = False  # raise instead of logging when the probe exceeds it

    def __post_init__(self) -> None:
        positive = (
            "steps",
            "prompts_per_step",
            "group_size",
            "max_new_tokens",
            "num_learners",
            "num_rollout_engines",
            "eval_samples",
            "keep_checkpoints",
            "sync_bucket_mb",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"rl.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "log_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"rl.{name}: must be >= 0, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(
                f"rl.temperature: must be > 0 (1.0 for on-policy), got {self.temperature}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"rl.top_p: must be in (0, 1], got {self.top_p}")
        if not self.eval_temperature >= 0:
            raise ValueError(f"rl.eval_temperature: must be >= 0, got {self.eval_temperature}")
        if not self.parity_tolerance > 0:
            raise ValueError(f"rl.parity_tolerance: must be > 0, got {self.parity_tolerance}")
        if self.eval_max_prompts < 1:
            raise ValueError(f"rl.eval_max_prompts: must be >= 1, got {self.eval_max_prompts}")
        if not math.isfinite(self.temperature + self.top_p):
            raise ValueError("rl.temperature / rl.top_p: must be finite")
        if self.group_size < 2:
            raise ValueError("rl.group_size: group-relative advantages need at least 2 samples")
        if self.eval_samples > 1 and self.eval_temperature == 0:
            raise ValueError("rl.eval_samples > 1 needs rl.eval_temperature > 0 (greedy repeats)")


@dataclass
class ExperimentConfig:
    data: DataConfig
    model: ModelSource = field(default_factory=lambda: ModelSource(preset="tiny"))
    run: RunConfig = field(default_factory=RunConfig)
    rl: LoopConfig = field(default_factory=LoopConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def load_experiment(path: str | Path | None, overrides: list[str] = ()) -> ExperimentConfig:
    cfg = load_config(ExperimentConfig, path, list(overrides))
    if cfg.ray.colocate:
        loop = cfg.rl
        clashes = [
            f"rl.{name}={value}"
            for name, value, ok in (
                ("num_learners", loop.num_learners, loop.num_learners == 1),
                ("num_rollout_engines", loop.num_rollout_engines, loop.num_rollout_engines == 1),
                ("overlap", loop.overlap, not loop.overlap),
            )
            if not ok
        ]
        if clashes:
            raise ConfigError(
                f"ray.colocate: one process holds one learner rank and one engine and runs "
                f"the phases in turn, but {', '.join(clashes)}; set ray.colocate=false "
                "(Ray actors) or rl.num_learners=1 rl.num_rollout_engines=1 rl.overlap=false"
            )
    if cfg.learner.mini_batch_size and cfg.learner.mini_batch_size % cfg.rl.num_learners:
        raise ConfigError(
            f"learner.mini_batch_size: {cfg.learner.mini_batch_size} is not divisible by "
            f"rl.num_learners={cfg.rl.num_learners}"
        )
    return cfg
