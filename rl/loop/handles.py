"""The loop's narrow view of the cluster: what the driver may ask of its actors.

The loop imports no Ray. ``rl.cluster.actors.Cluster`` implements ``Cluster`` with Ray
actors and resolves every future behind these methods, except a launched generation, which
comes back as an opaque ``Pending`` handle that only ``collect`` opens. Entry points pass
``rl.cluster.session.connect`` (a ``Connect``) to ``rl.loop.driver.run_rl``; a test
passes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from policy.batch import Sequence
from rewards.records import RewardInput, RewardResult
from rl.algos.batching import TrainGroup
from rollout.types import GenerateResult, RolloutRequest, SamplingSettings


class ActorFailure(RuntimeError):
    """An actor died mid-run; the run can resume from its last checkpoint."""


Pending = Any  # a launched generation; only ``Cluster.collect`` looks inside


class Cluster(Protocol):
    """Learner ranks, rollout engines and reward pools of one run, as plain method calls."""

    def launch_generate(
        self, requests: list[RolloutRequest], sampling: SamplingSettings
    ) -> Pending: ...

    def collect(self, pending: Pending) -> GenerateResult: ...

    def generate(
        self, requests: list[RolloutRequest], sampling: SamplingSettings
    ) -> GenerateResult: ...

    def score(self, inputs: list[RewardInput]) -> tuple[list[RewardResult], dict[str, Any]]: ...

    def score_eval(
        self, inputs: list[RewardInput]
    ) -> tuple[list[RewardResult], dict[str, Any]]: ...

    def train_step(self, groups: list[TrainGroup], loss_fn: Any) -> dict[str, float]: ...

    def logprobs(self, seqs: list[Sequence]) -> list: ...

    def sync_weights(self, version: int, bucket_bytes: int) -> dict[str, float]: ...

    def save(self, directory: str) -> None: ...

    def load(self, directory: str) -> None: ...


# ``connect(cfg, model_dir)``: a context manager that starts the actors, yields the Cluster
# and stops them on exit; an actor's own error comes out as itself, a dead actor as
# ActorFailure.
Connect = Callable[[Any, str], AbstractContextManager[Cluster]]
