"""The cluster of one run inside the driver's process, without Ray (``ray.colocate: true``).

On one CPU machine the synchronous loop runs its phases in turn, so nothing is lost by
running them in one process, and a good deal is saved: no Ray (GCS, raylet and five Python
helpers, ~470 MB at the tiny preset), no second and third copy of torch, vLLM's and
DeepSpeed's modules in separate actor processes, no serialisation of requests, completions
and train batches, and a weight sync that is an in-process copy, bucket by bucket, from the
learner's tensors into the engine's. The same worker classes as the Ray actors run here
(``rl.cluster.workers``): one learner rank, one vLLM engine (its core in this process) and
the reward runtime, whose scoring still runs in its own worker processes with hard timeouts.
Every phase gets every core in turn (``rl.run.resources.phase_cores``). What it
gives up: several learner ranks or engines, ``rl.overlap`` and GPUs
(``rl.run.experiment.load_experiment`` refuses them), and the isolation of an actor (an
engine that crashes the process ends the run; resume from the last checkpoint).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from rl.algos.batching import deal
from rl.cluster.workers import LearnerWorker, RewardWorker, RolloutWorker, release_memory
from rl.run.eval_rewards import eval_rewards
from rl.run.resources import machine_cores, phase_cores
from rollout.types import GenerateResult

log = logging.getLogger(__name__)


def free_loopback_port() -> int:
    """A port on 127.0.0.1 nobody listens on now (the learner's single-rank group)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ColocatedCluster:
    """``rl.loop.handles.Cluster`` with the learner, the engine and the reward runtime in
    this process. Methods run to completion, except that ``launch_generate`` only records
    the call and ``collect`` makes it (where the driver times generation)."""

    def __init__(self, cfg: Any, model_dir: str) -> None:
        import torch

        if torch.cuda.is_available():
            raise RuntimeError(
                "ray.colocate: CUDA is visible, but colocating the learner and the engine "
                "on a GPU is not built (it needs vLLM's sleep mode around every generate, "
                "docs/bench.md); set ray.colocate=false"
            )
        self.threads = phase_cores(cfg.ray, machine_cores())
        log.info("colocated: learner, engine and rewards in this process, %d torch threads",
                 self.threads)  # fmt: skip
        self.rewards = self.eval_rewards = self.engine = self.learner = None
        try:
            self.rewards = RewardWorker(cfg.rewards)
            self._eval_config = eval_rewards(cfg.rewards)
            # The learner first: its single-rank group (on a port of ours, loopback only)
            # is the process's default group, which the engine's vLLM then adopts.
            self.learner = LearnerWorker(
                model_dir, cfg.learner, rank=0, world_size=1,
                master_port=free_loopback_port(), threads=self.threads,
            )  # fmt: skip
            self.engine = RolloutWorker(replace(cfg.rollout, model=model_dir), self.threads)
        except BaseException:
            self.shutdown()
            raise

    # -- rollout ---------------------------------------------------------------------------
    def launch_generate(self, requests: list, sampling: Any) -> Callable[[], GenerateResult]:
        return partial(self.engine.generate, requests, sampling)

    @staticmethod
    def collect(pending: Callable[[], GenerateResult]) -> GenerateResult:
        return pending()

    def generate(self, requests: list, sampling: Any) -> GenerateResult:
        return self.engine.generate(requests, sampling)

    # -- rewards ---------------------------------------------------------------------------
    def score(self, inputs: list) -> tuple[list, dict[str, Any]]:
        return self.rewards.score(inputs)

    def score_eval(self, inputs: list) -> tuple[list, dict[str, Any]]:
        if self.eval_rewards is None:
            self.eval_rewards = RewardWorker(self._eval_config)
        return self.eval_rewards.score(inputs)

    # -- learner ---------------------------------------------------------------------------
    def train_step(self, groups: list, loss_fn: Any) -> dict[str, float]:
        (part,) = deal(groups, 1)
        return self.learner.train_step(part, loss_fn)

    def logprobs(self, seqs: list) -> list:
        return self.learner.logprobs(seqs)

    def sync_weights(self, version: int, bucket_bytes: int) -> dict[str, float]:
        """The learner's weights into the engine, one bucket at a time."""
        try:
            return self.engine.update_weights(self.learner.weight_stream(bucket_bytes), version)
        finally:
            release_memory()

    def weight_digests(self) -> list[list[float]]:
        return [self.learner.weight_digest()]

    def save(self, directory: str) -> None:
        self.learner.save(directory)

    def load(self, directory: str) -> None:
        self.learner.load(directory)

    def shutdown(self) -> None:
        # The engine last: vLLM's clean-up also ends the process group the learner uses.
        for pool in (self.rewards, self.eval_rewards):
            if pool is not None:
                pool.close()
        self.learner = None
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None
        import torch.distributed as dist

        if dist.is_initialized():  # the engine never started: end the learner's group here
            dist.destroy_process_group()
