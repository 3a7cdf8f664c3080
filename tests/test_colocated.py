"""``ray.colocate``: the learner, the engine and the reward runtime in the driver's process.

The Ray stack is the reference: the same tiny recipe run both ways must log the same rewards
and losses and save the same weights, bit for bit (the same workers, seeds and thread
counts; only where they live differs), while the colocated run never starts Ray. Config
combinations one process cannot hold fail when the config loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rl.config import ConfigError
from rl.run.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "tiny-rl.yaml"
# Four steps with a mid-run checkpoint and a held-out eval at the end: every Cluster method.
OVERRIDES = ["rl.steps=4", "rl.save_every=2", "rl.eval_max_prompts=2"]

PROBE = """
import json, sys
from rl.cluster.session import connect
from rl.loop.driver import run_rl
from rl.run.experiment import load_experiment

cfg = load_experiment(sys.argv[1], sys.argv[2:])
run_rl(cfg, connect=connect)
# vLLM imports ray where it is installed; what matters is whether it was started
ray = sys.modules.get("ray")
print(json.dumps({"ray_started": bool(ray and ray.is_initialized())}))
"""


def _run(run_dir: Path, colocate: bool) -> tuple[list[dict], dict]:
    args = [f"run.dir={run_dir}", f"ray.colocate={str(colocate).lower()}", *OVERRIDES]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(CONFIG), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows, json.loads(out.stdout.strip().splitlines()[-1])


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    return load_file(str(run_dir / "checkpoints" / latest / "model.safetensors"))


@pytest.mark.integration
def test_colocated_run_equals_the_ray_run_bit_for_bit(tmp_path):
    ray_rows, ray_seen = _run(tmp_path / "ray", colocate=False)
    rows, seen = _run(tmp_path / "colocated", colocate=True)
    assert ray_seen["ray_started"] and not seen["ray_started"]
    assert len(rows) == len(ray_rows) == 4
    for key in ("reward/mean", "train/loss", "train/grad_norm", "response/length_mean"):
        assert [r[key] for r in rows] == [r[key] for r in ray_rows], key
    # the engine generated from the synced weights: its logprobs match the learner's
    parity = [r["parity/max_abs_diff"] for r in rows]
    assert len(parity) == 4 and max(parity) <= 1e-3, parity
    assert rows[-1]["eval/think/accuracy"] == ray_rows[-1]["eval/think/accuracy"]
    assert rows[-1]["sync/bytes"] == ray_rows[-1]["sync/bytes"] > 0
    mine, theirs = _weights(tmp_path / "colocated"), _weights(tmp_path / "ray")
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert len(list((tmp_path / "colocated" / "checkpoints").glob("step-*"))) == 2


FAILED_START = """
import json, sys
import psutil
import torch.distributed as dist
from rl.cluster.colocated import ColocatedCluster
from rl.run.experiment import load_experiment

cfg = load_experiment(sys.argv[1], sys.argv[2:])
model_dir = cfg.model.prepare(cfg.run.path)
try:
    ColocatedCluster(cfg, model_dir)
    error = None
except Exception as err:  # the engine's own error, after the learner and rewards started
    error = f"{type(err).__name__}: {err}"
me = psutil.Process()
# multiprocessing's forkserver and resource tracker serve the whole interpreter and stay;
# a reward worker would be a child of the forkserver
helpers = [p for p in me.children() if "multiprocessing." in " ".join(p.cmdline())]
others = [p for p in me.children(recursive=True) if p not in helpers and p.is_running()]
print(json.dumps({"error": error, "group": dist.is_initialized(), "children": len(others)}))
"""


@pytest.mark.integration
def test_an_engine_that_cannot_start_leaves_nothing_behind(tmp_path):
    # the learner and the reward pool start first; then vLLM refuses the model length
    args = [f"run.dir={tmp_path}", "ray.colocate=true", "rollout.max_model_len=100000000"]
    out = subprocess.run(
        [sys.executable, "-c", FAILED_START, str(CONFIG), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["error"] and "max_model_len" in seen["error"], seen
    assert seen["group"] is False  # the learner's process group is gone
    assert seen["children"] == 0  # the reward pool's workers too


@pytest.mark.parametrize(
    "override, named",
    [
        ("rl.num_learners=2", "rl.num_learners=2"),
        ("rl.num_rollout_engines=2", "rl.num_rollout_engines=2"),
        ("rl.overlap=true", "rl.overlap=True"),
    ],
)
def test_colocate_refuses_what_one_process_cannot_hold(override, named):
    with pytest.raises(ConfigError, match="ray.colocate") as err:
        load_experiment(CONFIG, ["ray.colocate=true", override])
    assert named in str(err.value)


@pytest.mark.parametrize(
    "override, hint",
    [("ray.address=auto", "ray.address"), ("ray.learner_gpus=1", "ray.learner_gpus")],
)
def test_colocate_refuses_a_cluster_or_gpus(override, hint):
    with pytest.raises((ConfigError, ValueError), match="ray.colocate") as err:
        load_experiment(CONFIG, ["ray.colocate=true", override])
    assert hint in str(err.value)
