"""Experiment tracking: W&B offline logging beside TensorBoard (``run.wandb``) and
``sailrl compare`` over several run directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl.cli import main
from rl.recipe.compare import compare, find_runs
from rl.run.experiment import load_experiment
from rl.run.runlog import RunLog, read_metrics

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny-rl.yaml"


def test_wandb_offline_logs_the_metrics_beside_tensorboard(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = load_experiment(CONFIG, [f"run.dir={tmp_path}", "run.wandb={project: t, mode: offline}"])
    with RunLog(tmp_path, cfg) as log:
        for step in (1, 2):
            log.log(step, {"reward/mean": 0.125 * step, "note": "text is JSONL only"})
    [run_file] = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    data = run_file.read_bytes()
    assert b"reward/mean" in data and b"0.25" in data  # the step-2 value
    assert list((tmp_path / "tb").iterdir())  # TensorBoard still written
    assert [r["reward/mean"] for r in read_metrics(tmp_path)] == [0.125, 0.25]


def test_wandb_config_is_validated():
    with pytest.raises(Exception, match="run.wandb.mode"):
        load_experiment(CONFIG, ["run.wandb.mode=sometimes"])


def _run(path: Path, rewards: list[float], acc: float) -> Path:
    path.mkdir(parents=True)
    rows = [{"step": i + 1, "reward/mean": r} for i, r in enumerate(rewards)]
    rows[-1]["eval/think/accuracy"] = acc
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_compare_plots_runs_on_shared_axes_and_tables_final_numbers(tmp_path, capsys):
    a = _run(tmp_path / "a", [0.1, 0.3, 0.6], 0.5)
    # a pipeline-like root: two stages, each with run/metrics.jsonl
    _run(tmp_path / "b" / "rlvr" / "run", [0.2, 0.4], 0.25)
    _run(tmp_path / "b" / "rl_mixed" / "run", [0.3], 0.75)
    assert list(find_runs([a, tmp_path / "b"])) == ["a", "b/rl_mixed", "b/rlvr"]
    out = tmp_path / "cmp.png"
    assert main(["compare", str(a), str(tmp_path / "b"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "steps", "reward/mean", "eval/think/accuracy"]
    assert lines[1].split() == ["a", "3", "0.6000", "0.5000"]
    assert lines[3].split() == ["b/rlvr", "2", "0.4000", "0.2500"]
    table, shown, _ = compare([a], tmp_path / "one.png", ["reward/mean"])
    assert shown == ["reward/mean"] and "0.6000" in table


def test_compare_keeps_runs_with_the_same_name_apart(tmp_path):
    # two pipelines' RLVR stages: both run dirs are called "run", both parents "rlvr"
    for seed in ("seed0", "seed1"):
        _run(tmp_path / seed / "rlvr" / "run", [0.1, 0.2], 0.5)
    runs = find_runs([tmp_path / "seed0" / "rlvr" / "run", tmp_path / "seed1" / "rlvr" / "run"])
    assert list(runs) == ["seed0/rlvr", "seed1/rlvr"]
    assert runs["seed1/rlvr"] == tmp_path / "seed1" / "rlvr" / "run"


def test_compare_missing_run_dir_is_a_user_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
