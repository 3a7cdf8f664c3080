"""Plugging in a reward as a newcomer does, end to end (Ray, vLLM-CPU, DeepSpeed-CPU): a
plug-in reaches Ray reward actors through the runtime environment; a sparse reward on a fresh
tiny model earns nothing, every group is dropped, and samples.jsonl still shows the text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    yield
    import ray

    ray.shutdown()


def test_plugin_reaches_a_ray_reward_actor_through_py_modules(tmp_path, monkeypatch):
    import ray

    from rewards import RewardInput, RewardsConfig, RewardSetConfig, RuntimeConfig
    from rl.cluster.plugins import reward_runtime_env
    from rl.cluster.topology import start_ray
    from rl.cluster.workers import RewardWorker
    from rl.run.resources import RayConfig

    # A single-file plug-in on this process's sys.path only: Ray workers (started with the
    # environment's PYTHONPATH) can import it only if py_modules ships it.
    (tmp_path / "shipped_reward.py").write_text(
        "def always_three_quarters(completion, answer, metadata):\n    return 0.75\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    custom = {"shipped": "shipped_reward:always_three_quarters"}
    cfg = RewardsConfig(
        sets={"default": RewardSetConfig(weights={"shipped": 1.0})},
        custom=custom,
        runtime=RuntimeConfig(workers=1),
    )
    env = reward_runtime_env(custom, cluster=True)
    assert env["py_modules"] == [str(tmp_path / "shipped_reward.py")]
    ray.shutdown()
    start_ray(RayConfig(), env)
    actor = ray.remote(num_cpus=0.5)(RewardWorker).remote(cfg)
    results, stats = ray.get(actor.score.remote([RewardInput("x", "1")]))
    assert results[0].reward == 0.75 and stats["outcomes"]["ok"] == 1
    ray.get(actor.close.remote())
    ray.kill(actor)
    ray.shutdown()  # the next test starts its own Ray with the recipe's resources
    sys.modules.pop("shipped_reward", None)


def test_sparse_reward_on_a_fresh_tiny_model_drops_every_group_but_logs_samples(tmp_path):
    from rl.cluster.session import connect
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment

    cfg = load_experiment(ROOT / "configs" / "tiny-rl.yaml", [
        f"run.dir={tmp_path}", "rl.steps=2", "rl.save_every=0", "rl.probe_parity=false",
        "rewards.sets.default.weights={answer: 1.0}", "algo.max_extra_rounds=0",
    ])  # fmt: skip
    run_rl(cfg, connect=connect)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # a model that has never seen \boxed{} never earns the answer reward
    assert [r["reward/mean"] for r in rows] == [0.0, 0.0]
    assert [r["sampling/kept_groups"] for r in rows] == [0, 0]
    samples = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert samples and {s["step"] for s in samples} == {1, 2}
    assert all(s["kept"] is False and isinstance(s["completion"], str) for s in samples)
