"""The published schemas through the real jobs on a tiny model: eval, sample and filter
(in-process vLLM), an SFT stage and a short RL run, each consuming the fixtures of
tests/public_data.py; the engine's outputs change when only the image bytes change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the in-process engine: faster start

import public_data as pdata
import pytest

from policy.data import ReadOptions, read_examples

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from policy.checkpoint import init_checkpoint

    return str(init_checkpoint("tiny", tmp_path_factory.mktemp("m") / "ckpt", force_image_size=112))


def _cfg(max_tokens=8):
    from rl.recipe.offline import OfflineConfig
    from rollout.config import RolloutConfig

    rollout = RolloutConfig(dtype="float32", kv_cache_gib=0.25, max_model_len=1024)
    return OfflineConfig(rollout=rollout, max_tokens=max_tokens, temperature=1.0, seed=0)


def test_offline_jobs_consume_published_schemas(ckpt, tmp_path):
    from rl.recipe.offline import OfflineSession, difficulty_filter, rejection_sample, run_eval
    from rollout.types import SamplingSettings

    red = read_examples(pdata.geometry3k(tmp_path / "red.parquet", n=1))[0]
    blue_rows = read_examples(pdata.geometry3k(tmp_path / "blue.parquet", n=2))
    blue = type(red)(**{**blue_rows[1].__dict__, "prompt": red.prompt})
    with OfflineSession(ckpt, _cfg()) as s:
        requests = [s.builder.request(s.builder.prompt(f"p{i}", ex, "think", pixels=False))
                    for i, ex in enumerate((red, blue))]  # fmt: skip
        result = s.engine.generate(requests, SamplingSettings(n=1, max_tokens=4, seed=7))
    first, second = result.completions
    assert not result.failures and first.prompt_token_ids == second.prompt_token_ids
    # same token ids, same seed: only the pixels differ, and so do the engine's logprobs
    assert max(abs(a - b) for a, b in zip(first.logprobs, second.logprobs)) > 1e-4 or (
        first.token_ids != second.token_ids)  # fmt: skip

    metrics = run_eval(ckpt, pdata.mathvista(tmp_path / "mv.parquet"), _cfg(), ["think"])
    assert 0.0 <= metrics["eval/think/accuracy"] <= 1.0
    stats = rejection_sample(ckpt, pdata.verl_geo3k(tmp_path / "v.parquet"),
                             tmp_path / "cot.parquet", _cfg(), n=2)  # fmt: skip
    assert stats["prompts"] == 3
    out = tmp_path / "kept.jsonl"
    stats = difficulty_filter(ckpt, pdata.geometry3k(tmp_path / "g.parquet"), out, _cfg(), k=2)
    assert stats["prompts"] == 4 and sum(stats[k] for k in ("kept", "always_solved",
                                                            "never_solved")) == 4  # fmt: skip
    for line in out.read_text().splitlines():
        assert all(not isinstance(i, dict) for i in json.loads(line)["images"])


def test_sft_stage_trains_on_llava_and_trl(tmp_path):
    from rl.config import from_dict
    from rl.recipe.sft_stage import SFTExperiment, run_sft
    from rl.run.runlog import read_metrics

    files = [str(pdata.llava(tmp_path / "llava.json")),
             str(pdata.trl_messages(tmp_path / "m.parquet"))]  # fmt: skip
    cfg = from_dict(SFTExperiment, {
        "model": {"preset": "tiny", "overrides": {"force_image_size": 112}},
        "run": {"dir": str(tmp_path / "run")},
        "sft": {"train_files": files, "max_steps": 2, "batch_size": 2, "lr": 1e-3},
        "learner": {"zero_stage": 0},
    })  # fmt: skip
    run_dir = run_sft(cfg)
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [1, 2] and rows[-1]["data/bad_rows"] == 0
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["train"]["format"] == "llava+trl" and report["train"]["images"] == 2


def test_worked_example_of_docs_runs_and_skips_a_bad_row(tmp_path, monkeypatch):
    """docs/data.md's worked example (docs/examples/geometry3k-rl.yaml on the parquet that
    docs/examples/geometry3k_like.py writes), plus a file with one undecodable image."""
    import ray

    from rl.cluster.session import connect
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment
    from rl.run.runlog import read_metrics

    monkeypatch.syspath_prepend(str(ROOT))
    from docs.examples.geometry3k_like import write

    data = tmp_path / "data"
    write(data / "train.parquet", rows=16)
    pdata.geometry3k(data / "more.parquet", n=4, bad_row=2)
    cfg = load_experiment(ROOT / "docs" / "examples" / "geometry3k-rl.yaml", [
        f"run.dir={tmp_path / 'run'}", f"data.train={data}", "data.on_bad_row=skip",
        "data.max_bad_fraction=0.1", "rl.steps=1",
    ])  # fmt: skip
    try:
        run_rl(cfg, connect=connect)
    finally:
        ray.shutdown()
    rows = read_metrics(tmp_path / "run")
    assert rows[-1]["step"] == 1 and rows[-1]["data/bad_rows"] == 1
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())["train"]
    assert report["rows"] == 20 and report["format"] == "hf-vqa"
    assert report["bad_examples"][0]["where"].endswith("more.parquet:row 3")


def test_cli_bad_image_exits_2_naming_file_and_row(tmp_path):
    bad = pdata.geometry3k(tmp_path / "g.parquet", n=4, bad_row=2)
    proc = subprocess.run(
        [sys.executable, "-m", "rl.cli", "rl", "--config", str(ROOT / "configs" / "tiny-rl.yaml"),
         f"run.dir={tmp_path / 'run'}", "data.synthetic=null", f"data.train={bad}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "g.parquet:row 3" in proc.stderr and "Started a local Ray" not in proc.stderr
    assert not (tmp_path / "run" / "init-model").exists()


def test_data_inspect_and_convert(ckpt, tmp_path):
    bad = pdata.geometry3k(tmp_path / "g.parquet", n=4, bad_row=2)
    cli = [sys.executable, "-m", "rl.cli", "data"]
    proc = subprocess.run([*cli, "inspect", str(bad), "--model", ckpt, "--rows", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["format"] == "hf-vqa" and summary["rows"] == 4 and summary["bad_rows"] == 1
    assert summary["rows_with_images"] == 3 and summary["images"] == 3
    assert summary["prompt_tokens"]["min"] > 16  # 16 <IMG_CONTEXT> per 112 px tile
    assert "<IMG_CONTEXT>x" in proc.stdout
    out = tmp_path / "canon.parquet"
    proc = subprocess.run([*cli, "convert", str(pdata.mathvista(tmp_path / "mv.parquet")),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    back = read_examples(out, ReadOptions())
    assert back.format == "sailrl" and back[0].answer == "square" and back[0].images


def test_filter_killed_midway_resumes_without_duplicates(ckpt, tmp_path):
    """A real kill (SIGKILL of the whole process group) while ``sailrl filter`` writes."""
    import signal
    import time

    data = pdata.geometry3k(tmp_path / "g.parquet", n=40)
    out = tmp_path / "kept.jsonl"
    progress = tmp_path / "kept.jsonl.progress.jsonl"
    cmd = [sys.executable, "-m", "rl.cli", "filter", "--model", ckpt, "--data", str(data),
           "--out", str(out), "--k", "2", "--chunk", "1", "--max-tokens", "24",
           "--kv-cache-gib", "0.25", "--max-model-len", "1024", "--dtype", "float32"]  # fmt: skip
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = 0
    for line in progress.read_text().splitlines():  # a line cut by the kill does not count
        try:
            done += len(json.loads(line)["done"])
        except json.JSONDecodeError:
            break
    assert 3 <= done < 40, "the job finished before it could be killed"
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["prompts"] == 40
    assert stats["kept"] + stats["always_solved"] + stats["never_solved"] == 40
    answers = [json.loads(line)["answer"] for line in out.read_text().splitlines()]
    assert len(answers) == len(set(answers)) == stats["kept"]
    assert f"resuming, {done} of 40 prompts already done" in proc.stderr
