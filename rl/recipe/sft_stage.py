"""An SFT stage (LongCoT or Think-Fusion) with a run directory, atomic checkpoints and resume.

    sailrl sft --config configs/<stage>.yaml [dotted.key=value ...] [--resume auto]

The loop itself is ``sft.train``; this module gives it a learner, a run log and a ``save``
callback that publishes checkpoints through ``rl.run.checkpoint`` (the same format RL uses, so
every stage's checkpoint is a loadable SAIL-VL2 directory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from policy.learner_config import LearnerConfig
from rl.config import load_config
from rl.run.checkpoint import CheckpointManager, read_state
from rl.run.experiment import ModelSource, RunConfig
from rl.run.prompt_data import bad_row_counts, load_checked, write_report
from rl.run.runlog import RunLog
from sft.config import SFTConfig

log = logging.getLogger(__name__)


@dataclass
class SFTExperiment:
    model: ModelSource = field(default_factory=lambda: ModelSource(preset="tiny"))
    run: RunConfig = field(default_factory=lambda: RunConfig(name="sft"))
    sft: SFTConfig = field(default_factory=SFTConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if not self.sft.train_files:
            raise ValueError("sft.train_files: name at least one JSONL/parquet file")


def load_sft_experiment(path: str | Path | None, overrides: list[str] = ()) -> SFTExperiment:
    return load_config(SFTExperiment, path, list(overrides))


def run_sft(cfg: SFTExperiment, resume: str | None = None) -> Path:
    """Train the stage; returns the run directory (its latest checkpoint is the result)."""
    from policy.learner import Learner
    from policy.processor import SAILVLProcessor
    from sft.data import SFTStream
    from sft.train import SFTState, learner_config_for, plan_total_steps, train

    run_dir = cfg.run.path
    ckpts = CheckpointManager(run_dir / "checkpoints", keep=cfg.keep_checkpoints)
    start = None
    if resume:
        from rl.run.preflight import resolve_resume

        start = resolve_resume(ckpts, resume)
    model_dir = cfg.model.prepare(run_dir)
    s = cfg.sft
    opts = s.read_options()
    # Every row and image is checked here, before the learner starts.
    train_set = load_checked(s.train_files, opts, "sft.train_files", require=("response",))
    eval_set = (
        load_checked(s.eval_files, opts, "sft.eval_files", ("response",)) if s.eval_files else None
    )
    write_report(run_dir, train=train_set, eval=eval_set)
    counts = bad_row_counts(train=train_set, eval=eval_set)
    stream = SFTStream(train_set, s.mode, s.seed, s.cot_fraction, s.fusion_epoch_size)
    total = plan_total_steps(s, stream.epoch_size)
    learner = Learner.from_pretrained(model_dir, learner_config_for(s, cfg.learner, total))
    state = None
    if start is not None:
        learner.load(start)
        state = SFTState.from_dict(read_state(start))
        log.info("resumed SFT from %s at step %d", start, state.step)
    if state is not None and state.step >= total:
        log.info("SFT stage already complete (%d steps)", total)
        return run_dir

    def save(st: SFTState) -> None:
        ckpts.save(st.step, learner.save, st.to_dict())

    processor = SAILVLProcessor.from_pretrained(model_dir)
    resume_step = state.step if state is not None else 0  # drop records of a cut-off run
    with RunLog(run_dir, cfg, resume_step=resume_step) as runlog:
        train(s, learner, processor, _WithCounts(runlog, counts), stream=stream,
              eval_examples=eval_set, save=save, start=state)  # fmt: skip
    return run_dir


class _WithCounts:
    """The run log, with the data check's bad-row counts added to every metrics row."""

    def __init__(self, runlog: RunLog, counts: dict[str, int]) -> None:
        self.runlog, self.counts = runlog, counts

    def log(self, step: int, metrics: dict) -> dict:
        return self.runlog.log(step, {**metrics, **self.counts})

    def __getattr__(self, name: str):
        return getattr(self.runlog, name)
