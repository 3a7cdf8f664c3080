"""What a run asks of Ray: per-actor resources and how to reach it (the ``ray`` section),
and the check that a private Ray can hold the actors, made before anything starts. Ray-free
(``rl.cluster.topology`` starts Ray and places the actors with these numbers)."""

from __future__ import annotations

import os
from dataclasses import dataclass


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
    # Private Ray: torch threads of each phase follow the machine's cores (see phase_threads);
    # false keeps Ray's OMP_NUM_THREADS (= the actor's num_cpus).
    phase_threads: bool = True
    # Private Ray's object store (MiB); None: sized from the checkpoint (object_store_bytes).
    object_store_mib: int | None = None
    # One CPU machine without Ray: the learner, the engine and the reward runtime run in the
    # driver's process, every phase on every core in turn (rl.cluster.colocated). One learner
    # rank and one engine, no rl.overlap, no GPUs.
    colocate: bool = False

    def __post_init__(self):
        import math

        for name in ("learner_cpus", "learner_gpus", "rollout_cpus", "rollout_gpus", "reward_cpus"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ray.{name}: must be a finite number >= 0, got {value}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(
                f"ray.num_cpus: must be >= 1 (or null for all cores), got {self.num_cpus}"
            )
        if self.object_store_mib is not None and self.object_store_mib < 80:
            raise ValueError(
                f"ray.object_store_mib: must be >= 80 (Ray's minimum) or null, "
                f"got {self.object_store_mib}"
            )
        if self.colocate and self.address:
            raise ValueError(
                f"ray.colocate: runs without Ray on this machine, but ray.address is "
                f"{self.address!r}; set one of them (ray.address=null or ray.colocate=false)"
            )
        if self.colocate and (self.learner_gpus or self.rollout_gpus):
            raise ValueError(
                "ray.colocate: the colocated mode runs on CPU; set ray.learner_gpus and "
                "ray.rollout_gpus to 0 or ray.colocate=false"
            )
        if self.learner_cpus + self.learner_gpus == 0 or self.rollout_cpus + self.rollout_gpus == 0:
            raise ValueError("ray.learner_* / ray.rollout_*: each actor needs some CPU or GPU")

    @property
    def private(self) -> bool:
        """True when this run starts its own single-machine Ray (everything on loopback)."""
        return not self.address


def machine_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def phase_cores(cfg: RayConfig, cores: int) -> int:
    """The cores a phase may use on one machine: ``cores``, capped by ``ray.num_cpus``.

    >>> phase_cores(RayConfig(num_cpus=4), 16), phase_cores(RayConfig(), 2)
    (4, 2)
    """
    return max(1, min(cores, cfg.num_cpus or cores))


def check_resources(cfg: RayConfig, num_learners: int, num_rollouts: int) -> None:
    """Before Ray starts: a private Ray must hold every bundle plus the two reward actors
    (cluster capacity is only known after joining; ``place`` checks it there). A colocated
    run places nothing."""
    if not cfg.private or cfg.colocate:
        return
    total = cfg.num_cpus or max(4, os.cpu_count() or 1)
    need = num_learners * cfg.learner_cpus + num_rollouts * cfg.rollout_cpus + 2 * cfg.reward_cpus
    if need > total:
        raise ValueError(
            f"ray: the actors need {need:g} CPUs ({num_learners} x ray.learner_cpus="
            f"{cfg.learner_cpus:g}, {num_rollouts} x ray.rollout_cpus={cfg.rollout_cpus:g}, "
            f"2 x ray.reward_cpus={cfg.reward_cpus:g}) but the private Ray has {total} "
            "(ray.num_cpus); lower them or raise ray.num_cpus"
        )
    gpus = num_learners * cfg.learner_gpus + num_rollouts * cfg.rollout_gpus
    if gpus:
        import torch

        have = torch.cuda.device_count()
        if gpus > have:
            raise ValueError(
                f"ray.learner_gpus / ray.rollout_gpus: the actors need {gpus:g} GPUs but this "
                f"machine has {have}; set them to 0 on a CPU machine"
            )
