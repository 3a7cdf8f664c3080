"""Run plumbing without Ray: records truncated on resume, checkpoint references, the CLI's
error lines, actor root causes, the empty held-out set."""

from __future__ import annotations

import json

import pytest

from rl.run.checkpoint import CheckpointError, CheckpointManager, resolve_reference
from rl.run.runlog import RunLog, read_metrics, truncate_records


def _steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_resume_drops_rows_after_the_checkpoint_and_a_torn_line(tmp_path):
    with RunLog(tmp_path, tensorboard=False) as log:
        for step in (1, 2, 3):
            log.log(step, {"x": step})
            log.write_jsonl("samples.jsonl", [{"step": step, "i": 0}, {"step": step, "i": 1}])
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "x"')  # a line cut short
    with RunLog(tmp_path, tensorboard=False, resume_step=2) as log:
        log.log(3, {"x": 30})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert read_metrics(tmp_path)[-1]["x"] == 30
    assert _steps(tmp_path / "samples.jsonl") == [1, 1, 2, 2]
    assert truncate_records(tmp_path / "missing.jsonl", 0) == 0


def test_resume_purges_tensorboard_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with RunLog(tmp_path) as log:
        for step in (1, 2, 3):
            log.log(step, {"x": float(step)})
    with RunLog(tmp_path, resume_step=1) as log:
        for step in (2, 3):
            log.log(step, {"x": 10.0 * step})
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [(1, 1.0), (2, 20.0), (3, 30.0)]


def test_checkpoint_references(tmp_path):
    ckpts = CheckpointManager(tmp_path / "run" / "checkpoints")
    for step in (2, 4):
        ckpts.save(step, lambda d: (d / "config.json").write_text("{}"), {})
    root = ckpts.root
    assert resolve_reference(root / "latest") == root / "step-000004"
    assert resolve_reference(root / "2") == root / "step-000002"
    assert resolve_reference(tmp_path / "run") == root / "step-000004"
    assert resolve_reference(root) == root / "step-000004"
    assert resolve_reference(root / "step-000002") == root / "step-000002"
    with pytest.raises(CheckpointError, match="no checkpoint of step 3"):
        resolve_reference(root / "3")


def test_error_lines():
    from rl.cli import error_text, is_user_error

    long = ValueError("one\ntwo\nthree\nfour")
    assert error_text(long) == "sailrl: error: one\n  two ... (--debug shows all)"
    assert error_text(long, debug=True).count("\n") == 3
    assert is_user_error(CheckpointError("x")) and not is_user_error(KeyError("x"))
    bad = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert "not UTF-8" in error_text(bad)


def test_root_cause_of_an_actor_that_could_not_start():
    import ray

    from rl.cluster.actors import ActorStartError, root_cause

    text = (
        "The actor died because of an error raised in its creation task, ray::W.__init__()\n"
        '  File "x.py", line 3, in __init__\n'
        "rl.run.checkpoint.CheckpointError: checkpoint /c is incomplete (no COMPLETE marker)\n"
    )
    err = ray.exceptions.RayActorError(error_msg=text, actor_init_failed=True)
    cause = root_cause(err)
    assert isinstance(cause, ActorStartError)
    assert str(cause) == (
        "an actor could not start: CheckpointError: checkpoint /c is incomplete (no COMPLETE marker)"
    )
    crash = ray.exceptions.RayActorError(error_msg="killed", actor_init_failed=False)
    assert root_cause(crash) is crash


def test_empty_held_out_set_is_an_error():
    from rl.loop.evaluation import evaluate

    with pytest.raises(ValueError, match="held-out set is empty"):
        evaluate([], ["think"], None, None, None, samples=1, temperature=0.0, max_tokens=4, seed=0)
