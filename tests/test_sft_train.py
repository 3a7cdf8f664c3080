"""SFT on the DeepSpeed-CPU learner: the loss falls on a few synthetic examples, per-mode
losses are reported, and a run resumed from a checkpoint continues exactly."""

import dataclasses
import json
from types import SimpleNamespace

import pytest
from sft_tiny import tiny_model

from policy.learner_config import LearnerConfig
from rl.tasks import TaskConfig, write_dataset
from sft.config import SFTConfig
from sft.data import Cursor, SFTStream, load_sft_examples
from sft.train import (
    SFTState,
    learner_config_for,
    plan_total_steps,
    to_train_sequences,
    train,
)

pytestmark = pytest.mark.integration


class MemoryLog:
    """The RunLog surface sft uses: log(step, metrics) and progress(total, desc)."""

    def __init__(self):
        self.rows = {}
        self.bars = []

    def log(self, step, metrics):
        self.rows.setdefault(step, {}).update(metrics)

    def progress(self, total, desc):
        log = self

        class Bar:
            n = 0

            def update(self, k):
                self.n += k

            def close(self):
                log.bars.append((total, desc, self.n))

        return Bar()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft_data")
    cfg = TaskConfig(
        families=["text_arith", "image_arith", "linear_eq"],
        n_sft_think=4,
        n_sft_direct=4,
        n_rl=0,
        n_eval=0,
        image_size=112,
        difficulty={"easy": 1.0},
    )
    manifest = write_dataset(cfg, root)
    return [str(manifest.path("sft_think")), str(manifest.path("sft_direct"))]


def _learner(cfg, stream, seed=0, model_and_processor=None):
    from policy.learner import Learner

    model, processor = model_and_processor or tiny_model(seed=seed)
    model.train()
    total = plan_total_steps(cfg, stream.epoch_size)
    lcfg = learner_config_for(cfg, LearnerConfig(zero_stage=0, micro_batch_tokens=4096), total)
    return Learner(model, lcfg, tokenizer=processor.tokenizer), processor


def _cfg(files, **kw):
    base = dict(
        train_files=files,
        mode="fusion",
        cot_fraction=0.5,
        batch_size=8,
        lr=3e-3,
        schedule="constant",
        pack_budget=0,
        max_seq_len=512,
    )
    return SFTConfig(**{**base, **kw})


def test_sft_drives_loss_down(data):
    cfg = _cfg(data, max_steps=14, eval_every=14, eval_files=[data[0]])
    stream = SFTStream(load_sft_examples(cfg.train_files), cfg.mode, cfg.seed, cfg.cot_fraction)
    learner, processor = _learner(cfg, stream)
    log = MemoryLog()
    state = train(cfg, learner, processor, log, stream=stream)
    assert state.step == 14 and log.bars == [(14, "sft fusion", 14)]
    first, last = log.rows[1], log.rows[14]
    assert last["loss"] < 0.4 * first["loss"], (first["loss"], last["loss"])
    assert {"loss_think", "loss_direct", "lr", "tokens"} <= set(last)
    assert last["eval_loss"] < first["loss"] and "eval_loss_think" in last
    # Half the examples of each step are CoT at cot_fraction 0.5.
    assert all(row["cot_share"] == 0.5 for row in log.rows.values())
    assert learner.step == 14


def test_resume_continues_the_same_run(data, tmp_path):
    cfg = _cfg(data, max_steps=4, lr=1e-3, save_every=2)
    stream = SFTStream(load_sft_examples(cfg.train_files), cfg.mode, cfg.seed, cfg.cot_fraction)
    learner, processor = _learner(cfg, stream, seed=3)
    full = MemoryLog()
    train(cfg, learner, processor, full, stream=stream)

    from policy.learner import Learner

    learner, processor = _learner(cfg, stream, seed=3)
    saved = []

    def save(state):
        if state.step == 2:
            learner.save(tmp_path / "ckpt")
            (tmp_path / "ckpt" / "sft_state.json").write_text(json.dumps(state.to_dict()))
        saved.append(state.step)
        if state.step == 2:
            raise KeyboardInterrupt  # simulate the job dying right after the checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(cfg, learner, processor, MemoryLog(), stream=stream, save=save)
    start = SFTState.from_dict(json.loads((tmp_path / "ckpt" / "sft_state.json").read_text()))
    assert start == SFTState(2, Cursor(0, 16))
    resumed = Learner.from_pretrained(tmp_path / "ckpt", learner.config)
    resumed.load(tmp_path / "ckpt")
    log = MemoryLog()
    train(cfg, resumed, processor, log, stream=stream, start=start)
    assert sorted(log.rows) == [3, 4]
    for step in (3, 4):
        assert log.rows[step]["loss"] == pytest.approx(full.rows[step]["loss"], rel=1e-4, abs=1e-5)


def test_packed_rows_train_like_unpacked(data):
    cfg = _cfg(data, max_steps=1, pack_budget=1024)
    stream = SFTStream(load_sft_examples(cfg.train_files), cfg.mode, cfg.seed, cfg.cot_fraction)
    from sft.encoding import encode_batch
    from sft.loss import nll_loss

    losses = []
    for budget in (0, 1024):
        learner, processor = _learner(cfg, stream, seed=5)
        samples, _ = encode_batch(processor, next(stream.batches(8))[0], 512)
        seqs = to_train_sequences(samples, budget)
        assert (len(seqs) == len(samples)) == (budget == 0)
        # The reported loss is computed before the update: same weights, same batch.
        losses.append(learner.train_step(seqs, nll_loss)["loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_learner_schedule_mismatch_is_reported(data):
    cfg = _cfg(data, max_steps=2)
    stream = SFTStream(load_sft_examples(cfg.train_files), cfg.mode, cfg.seed, cfg.cot_fraction)
    processor = tiny_model()[1]
    for wrong in ({"lr": 5e-4}, {"mini_batch_size": 4}):
        lcfg = learner_config_for(cfg, LearnerConfig(zero_stage=0), 2)
        learner = SimpleNamespace(config=dataclasses.replace(lcfg, **wrong))
        with pytest.raises(ValueError, match="learner_config_for"):
            train(cfg, learner, processor, MemoryLog(), stream=stream)
