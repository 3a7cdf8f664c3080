"""Where actors run: Ray start-up on loopback (or an existing cluster) and actor placement.

Worker classes are plain Python (``rl.workers``); ``ray.remote`` is applied here, at placement
time, so the same classes run in unit tests without Ray.

On one machine Ray binds to 127.0.0.1 and starts no dashboard. On a cluster, start Ray on
every node yourself (``ray start --head`` / ``ray start --address=HEAD:6379``) and set
``ray.address: auto`` (or ``HEAD:6379``) in the experiment config; the placement below then
spreads learner ranks and rollout engines over the cluster's GPUs.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

log = logging.getLogger(__name__)


@dataclass
class RayConfig:
    """How to reach Ray and what each actor asks of it."""

    address: str | None = None  # None: start a private one on loopback; "auto": join a cluster
    num_cpus: int | None = None  # logical CPUs of a private Ray (default: max(4, cores))
    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    rollout_cpus: float = 1.0
    rollout_gpus: float = 0.0
    reward_cpus: float = 0.5

    def __post_init__(self):
        for name in ("learner_cpus", "learner_gpus", "rollout_cpus", "rollout_gpus"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def start_ray(cfg: RayConfig, runtime_env: dict[str, Any] | None = None) -> None:
    """Start (or join) Ray once per process; ``runtime_env`` adds job-level runtime
    environment fields (e.g. ``py_modules`` of reward plug-ins, rl.plugins)."""
    if ray.is_initialized():
        return
    # vLLM's per-step INFO/WARNING lines drown the progress bar; VLLM_LOGGING_LEVEL=INFO
    # in the environment brings them back.
    env = {
        **(runtime_env or {}),
        "env_vars": {
            "TOKENIZERS_PARALLELISM": "false",
            "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "ERROR"),
        },
    }
    if cfg.address:
        ray.init(address=cfg.address, runtime_env=env, log_to_driver=True)
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # private, loopback-only cluster
    ray.init(
        num_cpus=cfg.num_cpus or max(4, os.cpu_count() or 1),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env=env,
        configure_logging=False,
        log_to_driver=True,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Placement:
    """One placement group and the bundle each role's actors use."""

    group: PlacementGroup
    learner_bundles: list[int]
    rollout_bundles: list[int]

    def strategy(self, bundle: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=bundle)

    def remove(self) -> None:
        remove_placement_group(self.group)


def place(cfg: RayConfig, num_learners: int, num_rollouts: int) -> Placement:
    """Reserve one bundle per learner rank and per rollout engine, each on its own resources."""

    def bundle(cpus: float, gpus: float) -> dict[str, float]:
        res = {"CPU": cpus}
        if gpus:
            res["GPU"] = gpus
        return res

    bundles = [bundle(cfg.learner_cpus, cfg.learner_gpus)] * num_learners
    bundles += [bundle(cfg.rollout_cpus, cfg.rollout_gpus)] * num_rollouts
    group = placement_group(bundles, strategy="PACK")
    ready, _ = ray.wait([group.ready()], timeout=120)
    if not ready:
        raise RuntimeError(
            f"Ray could not reserve {bundles}: not enough free resources "
            f"(available: {ray.available_resources()}). Lower rl.num_learners / "
            "rl.num_rollout_engines or the per-actor ray.* resources."
        )
    learners = list(range(num_learners))
    return Placement(group, learners, list(range(num_learners, num_learners + num_rollouts)))


def remote_actor(cls: type, placement: Placement, bundle: int, cpus: float, gpus: float, **kw: Any):
    """Create ``cls`` as a Ray actor in ``bundle`` of ``placement``."""
    actor_cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(cls)
    return actor_cls.options(scheduling_strategy=placement.strategy(bundle)).remote(**kw)
