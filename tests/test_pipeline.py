"""The whole recipe, shortened, on a tiny model: every stage runs, a kill inside a stage and a
stop between stages both resume without losing finished work, and the report is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration

RECIPE = {
    "model": {"preset": "tiny", "overrides": {"force_image_size": 112}},
    "data": {
        "synthetic": {
            "families": ["text_arith", "image_arith"],
            "image_size": 112,
            "n_sft_think": 12,
            "n_sft_direct": 12,
            "n_rl": 6,
            "n_eval": 2,
        },
    },  # fmt: skip
    "longcot": {
        "sft": {"mode": "longcot", "max_steps": 8, "batch_size": 4, "lr": 3e-3, "save_every": 1},
        "learner": {"zero_stage": 0},
    },  # fmt: skip
    "rlvr": {
        "rl": {"steps": 2, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 12},
        "learner": {"zero_stage": 0, "lr": 1e-4},
    },  # fmt: skip
    "sample": {"n": 2, "max_tokens": 12},
    "fusion": {
        "sft": {"mode": "fusion", "max_steps": 2, "batch_size": 4, "lr": 1e-3},
        "learner": {"zero_stage": 0},
    },  # fmt: skip
    "rl_mixed": {
        "rl": {"steps": 1, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 12},
        "learner": {"zero_stage": 0, "lr": 1e-4},
    },  # fmt: skip
    "eval": {"max_tokens": 12, "max_prompts": 4, "pass_k": 2, "every": 1},
    "rollout": {"dtype": "float32", "kv_cache_gib": 0.25, "max_model_len": 1024},
}


def _pipeline(config: Path, run: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rl.cli", "pipeline", "--config", str(config), f"run.dir={run}"],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_pipeline_runs_all_stages_and_resumes(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(RECIPE))
    run = tmp_path / "run"
    ckpts = run / "longcot" / "run" / "checkpoints"

    # 1. killed inside LongCoT SFT, right after its first checkpoint
    proc = _pipeline(config, run)
    deadline = time.time() + 300
    while not (ckpts / "latest").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "no LongCoT checkpoint within 5 minutes"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "longcot" / "DONE.json").exists()
    killed_at = json.loads(
        (ckpts / (ckpts / "latest").read_text().strip() / "state.json").read_text()
    )

    # 2. resumed, and stopped cleanly between stages (after RLVR)
    _finish(_pipeline(config, run, SAILRL_STOP_AFTER="rlvr"))
    longcot = json.loads((run / "longcot" / "DONE.json").read_text())
    assert (run / "rlvr" / "DONE.json").exists() and not (run / "sample").exists()
    steps = [
        json.loads(x)["step"]
        for x in (run / "longcot" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps[-1] == 8 and killed_at["step"] >= 1
    assert (
        min(s for s in steps if s > killed_at["step"]) == killed_at["step"] + 1
    )  # resumed, not restarted
    done_before = (run / "longcot" / "DONE.json").stat().st_mtime_ns

    # 3. the rest of the recipe; finished stages are skipped, not redone
    out = _finish(_pipeline(config, run))
    assert "stage longcot already complete" in out and "stage rlvr already complete" in out
    assert (run / "longcot" / "DONE.json").stat().st_mtime_ns == done_before
    report = json.loads((run / "report.json").read_text())["stages"]
    assert list(report) == ["longcot", "rlvr", "sample", "fusion", "rl_mixed"]
    for stage in ("longcot", "rlvr", "fusion", "rl_mixed"):
        assert set(report[stage]) >= {"think", "direct"}, report[stage]
        assert 0.0 <= report[stage]["think"]["format_rate"] <= 1.0
    assert report["rlvr"]["reward_curve"] and report["rlvr"]["algo"] == "dapo"
    assert Path(longcot["model"]).is_dir()
    md = (run / "report.md").read_text()
    assert "| rl_mixed |" in md and (run / "eval.png").exists() and (run / "reward.png").exists()
    # the learning section: paired before/after, pass@k, curves from the in-loop evals
    learning = json.loads((run / "report.json").read_text())["rl"]
    assert learning["rlvr"]["before_stage"] == "longcot"
    assert learning["rl_mixed"]["before_stage"] == "fusion"
    think = learning["rlvr"]["modes"]["think"]
    assert think["n"] == 4 and think["ci95"][0] <= think["diff"] <= think["ci95"][1]
    assert set(think["pass"]["after"]) == {"pass@1", "pass@2"}
    assert [p[0] for p in think["curve"]] == [0, 1, 2]
    assert [p[0] for p in learning["rl_mixed"]["modes"]["direct"]["curve"]] == [0, 1]
    assert "answer" in learning["rlvr"]["reward_components"]
    for png in ("curves.png", "pass_at_k.png", "families.png", "reward_components.png"):
        assert (run / png).exists(), png


def test_stage_with_missing_checkpoint_is_a_clear_error(tmp_path):
    spec = {"model": {"path": str(tmp_path / "nope")}, "run": {"dir": str(tmp_path / "r")},
            "sft": {"train_files": [str(tmp_path / "x.jsonl")]}}  # fmt: skip
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump(spec))
    proc = subprocess.run(
        [sys.executable, "-m", "rl.cli", "sft", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr
