"""The driver's handles on every actor of an RL run: learner ranks, rollout engines and the
reward pool. Methods here are thin: they split work over actors, launch the calls and
gather the results; tensors travel actor to actor as ObjectRefs.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from rl.algos.batching import deal
from rl.cluster.plugins import reward_runtime_env
from rl.cluster.topology import (
    bundle_address,
    object_store_bytes,
    phase_threads,
    place,
    remote_actor,
    start_ray,
)
from rl.cluster.weight_sync import weight_sync
from rl.cluster.workers import LearnerWorker, RewardWorker, RolloutWorker
from rl.run.eval_rewards import eval_rewards
from rl.run.resources import check_resources, machine_cores
from rollout.types import GenerateResult

log = logging.getLogger(__name__)


class ActorStartError(RuntimeError):
    """An actor's constructor raised; the message is its own error (type: message)."""


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exceeded|Interrupt)): (.+)$")


def root_cause(err: BaseException) -> BaseException:
    """The error an actor itself raised, not Ray's wrapper: a failed method call gives its
    exception back; an actor whose constructor raised (Ray's ActorDiedError keeps only the
    text) gives ``ActorStartError`` with the last ``Type: message`` line of that text.
    Anything else (an actor killed by the system) is returned as it is."""
    while isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None:
        if err.cause is err:
            break
        err = err.cause
    if isinstance(err, ray.exceptions.RayActorError) and err.actor_init_failed:
        for line in reversed(str(err).splitlines()):
            match = _ERROR_LINE.match(line.strip())
            if match:
                name = match.group(1).rsplit(".", 1)[-1]
                return ActorStartError(f"an actor could not start: {name}: {match.group(2)}")
    return err


def _store_bytes(cfg: Any, model_dir: str) -> int:
    """The private object store for this checkpoint (rl.cluster.topology.object_store_bytes)."""
    weights = sum(f.stat().st_size for f in Path(model_dir).glob("*.safetensors"))
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return object_store_bytes(cfg, weights, memory)


def _shards(items: list, n: int) -> list[list[int]]:
    """Indices of ``items`` dealt round-robin to ``n`` ranks (similar token loads)."""
    return [list(range(i, len(items), n)) for i in range(n)]


class Cluster:
    """Learner ranks (one DeepSpeed data-parallel group), rollout engines, reward pool."""

    def __init__(self, cfg: Any, model_dir: str) -> None:
        loop = cfg.rl
        check_resources(cfg.ray, loop.num_learners, loop.num_rollout_engines)
        # On a cluster, reward plug-ins travel to the workers as py_modules (rl.cluster.plugins).
        start_ray(
            cfg.ray,
            reward_runtime_env(cfg.rewards.custom, cluster=bool(cfg.ray.address)),
            _store_bytes(cfg.ray, model_dir),
        )
        self.placement = place(cfg.ray, loop.num_learners, loop.num_rollout_engines)
        # The learner group meets at rank 0's node (loopback when Ray is private).
        host, port = bundle_address(
            self.placement, self.placement.learner_bundles[0], cfg.ray.private
        )
        learner_threads, rollout_threads = phase_threads(
            cfg.ray, loop.num_learners, loop.num_rollout_engines, loop.overlap, machine_cores()
        )
        log.info("torch threads: learner %s, rollout %s", learner_threads, rollout_threads)
        self.learners = [
            remote_actor(
                LearnerWorker,
                self.placement,
                bundle,
                cfg.ray.learner_cpus,
                cfg.ray.learner_gpus,
                model_dir=model_dir,
                config=cfg.learner,
                rank=rank,
                world_size=loop.num_learners,
                master_port=port,
                master_addr=host,
                threads=learner_threads,
            )
            for rank, bundle in enumerate(self.placement.learner_bundles)
        ]
        engine_cfg = replace(cfg.rollout, model=model_dir)
        self.engines = [
            remote_actor(
                RolloutWorker,
                self.placement,
                bundle,
                cfg.ray.rollout_cpus,
                cfg.ray.rollout_gpus,
                config=engine_cfg,
                threads=rollout_threads,
            )
            for bundle in self.placement.rollout_bundles
        ]
        self._reward_actor = ray.remote(num_cpus=cfg.ray.reward_cpus)(RewardWorker)
        self.rewards = self._reward_actor.remote(cfg.rewards)
        # Held-out evaluation scores rewards.eval_reward + format (comparable across stages),
        # in its own pool started at the first eval (the preflight has checked its rewards):
        # a run without held-out prompts never pays its processes, the others not at start.
        self._eval_config = eval_rewards(cfg.rewards)
        self.eval_rewards = None
        # Fail here, before any step, if an engine cannot start (bad checkpoint, no memory).
        (engines_on_cuda,) = set(ray.get([e.on_cuda.remote() for e in self.engines]))
        self.weights = weight_sync(cfg.rollout, engines_on_cuda, self.learners, self.engines)
        # The learners finish starting (DeepSpeed, the weights) while the first batch is
        # generated; the first learner call waits for them and raises their start-up error,
        # before any training (a broadcast group forms at the first sync).
        self.weights.open(cfg.rollout.weight_sync_timeout_s, loopback=cfg.ray.private)

    # -- rollout ---------------------------------------------------------------------------
    def launch_generate(self, requests: list, sampling: Any) -> list:
        """Start generation (requests dealt over the engines); returns pending refs."""
        parts = _shards(requests, len(self.engines))
        return [
            engine.generate.remote([requests[i] for i in part], sampling)
            for engine, part in zip(self.engines, parts)
            if part
        ]

    @staticmethod
    def collect(pending: list) -> GenerateResult:
        results = ray.get(pending)
        return GenerateResult(
            tuple(c for r in results for c in r.completions),
            tuple(f for r in results for f in r.failures),
        )

    def generate(self, requests: list, sampling: Any) -> GenerateResult:
        return self.collect(self.launch_generate(requests, sampling))

    # -- rewards ---------------------------------------------------------------------------
    def score(self, inputs: list) -> tuple[list, dict[str, Any]]:
        return ray.get(self.rewards.score.remote(inputs))

    def score_eval(self, inputs: list) -> tuple[list, dict[str, Any]]:
        if self.eval_rewards is None:
            self.eval_rewards = self._reward_actor.remote(self._eval_config)
        return ray.get(self.eval_rewards.score.remote(inputs))

    # -- learner ---------------------------------------------------------------------------
    def train_step(self, groups: list, loss_fn: Any) -> dict[str, float]:
        """``groups``: ``rl.algos.batching.TrainGroup`` records; each rank gets its share of the
        samples (``rl.algos.batching.deal``), every prompt once, and builds the sequences itself."""
        parts = deal(groups, len(self.learners))
        refs = [
            learner.train_step.remote(part, loss_fn) for learner, part in zip(self.learners, parts)
        ]
        return ray.get(refs)[0]  # metrics are reduced across ranks already

    def logprobs(self, seqs: list) -> list:
        parts = _shards(seqs, len(self.learners))
        # A rank without sequences still runs (collectives); give it a throw-away copy so
        # that ZeRO-3's gathered forward passes line up too.
        refs = [
            learner.logprobs.remote([seqs[i] for i in part] or seqs[:1])
            for learner, part in zip(self.learners, parts)
        ]
        out: list = [None] * len(seqs)
        for part, values in zip(parts, ray.get(refs)):
            for i, value in zip(part, values):
                out[i] = value
        return out

    def sync_weights(self, version: int, bucket_bytes: int) -> dict[str, float]:
        """Learner weights -> every engine, tagged ``version`` (``rl.cluster.weight_sync``)."""
        return self.weights.sync(version, bucket_bytes)

    def weight_digests(self) -> list[list[float]]:
        """One digest per learner rank (see LearnerWorker.weight_digest)."""
        return ray.get([learner.weight_digest.remote() for learner in self.learners])

    def save(self, directory: str) -> None:
        ray.get([learner.save.remote(directory) for learner in self.learners])

    def load(self, directory: str) -> None:
        ray.get([learner.load.remote(directory) for learner in self.learners])

    def shutdown(self) -> None:
        # Let the reward pool stop its worker processes before its actor goes away.
        pools = [r for r in (self.rewards, self.eval_rewards) if r is not None]
        ray.wait([r.close.remote() for r in pools], timeout=30)
        for actor in [*self.engines, *pools, *self.learners]:
            ray.kill(actor, no_restart=True)
        self.placement.remove()
