"""Weight sync behind one interface: learner weights -> every rollout engine, tagged with a
version, the driver never holding the tensors.

``weight_sync`` reads ``rollout.weight_transfer`` once and picks the implementation; nothing
else in the project looks at the transport's name:

- ``BroadcastSync`` ("nccl", "gloo"; "auto" is "nccl" on CUDA, "gloo" off it): learner
  rank 0 hosts a broadcast group that every engine worker joins (``rollout.broadcast``),
  then streams each update bucket by bucket while the engines receive it. The group forms
  at the first sync, so the first batch is generated while the learners are still starting.
- ``LocalSync`` ("local"): learner rank 0 exports every bucket as Ray objects and every
  engine loads them in-process. On CPU it costs memory: the whole copy sits in the learner's
  heap, then in Ray's shared-memory store, whose pages stay resident in the learner and in
  every engine that read them (~1.1 GB more summed RSS at the ~106M preset, docs/bench.md).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import ray

log = logging.getLogger(__name__)


class WeightSync(Protocol):
    transport: str  # what the weights travel over, for logs and tests

    def open(self, timeout_s: float, loopback: bool) -> None:
        """Set up whatever the transport needs, once, after the actors have started."""

    def sync(self, version: int, bucket_bytes: int) -> dict[str, float]:
        """Send the learner's weights to every engine as ``version``; the sync metrics."""


def resolve_transport(setting: str, engines_on_cuda: bool) -> str:
    """The transport ``rollout.weight_transfer: <setting>`` means for these engines.

    >>> resolve_transport("auto", engines_on_cuda=False), resolve_transport("auto", True)
    ('gloo', 'nccl')
    """
    transport = ("nccl" if engines_on_cuda else "gloo") if setting == "auto" else setting
    if transport == "nccl" and not engines_on_cuda:
        raise RuntimeError(
            "weight_transfer 'nccl' needs CUDA GPUs; on this machine use 'gloo' "
            "(broadcast over TCP) or 'local' (buckets through Ray's object store)"
        )
    return transport


def weight_sync(rollout: Any, engines_on_cuda: bool, learners: list, engines: list) -> WeightSync:
    """The weight sync that ``rollout.weight_transfer`` (``rollout.config.RolloutConfig``)
    asks for between these actors; not opened yet (``open``)."""
    transport = resolve_transport(rollout.weight_transfer, engines_on_cuda)
    if transport == "local":
        return LocalSync(learners, engines)
    return BroadcastSync(transport, learners, engines)


class LocalSync:
    """Buckets travel as ObjectRefs from learner rank 0 to every engine."""

    transport = "local"

    def __init__(self, learners: list, engines: list) -> None:
        self.learners, self.engines = learners, engines

    def open(self, timeout_s: float, loopback: bool) -> None:
        pass  # Ray's object store is all it needs

    def sync(self, version: int, bucket_bytes: int) -> dict[str, float]:
        exports = [learner.export_weights.remote(bucket_bytes) for learner in self.learners]
        ray.get(exports[1:])  # ranks > 0 take part in gathers and return nothing
        stats = ray.get([e.update_weights.remote(exports[0], version) for e in self.engines])
        return stats[0]


class BroadcastSync:
    """Learner rank 0 broadcasts (nccl or gloo) while every engine worker receives."""

    def __init__(self, transport: str, learners: list, engines: list) -> None:
        self.transport, self.learners, self.engines = transport, learners, engines
        self._group: tuple[float, bool] | None = None  # (timeout_s, loopback) until formed
        self._formed = False

    def open(self, timeout_s: float, loopback: bool) -> None:
        """Remember how to form the group; it forms at the first ``sync``, when the learners
        are up (they finish starting while the first batch is generated)."""
        self._group = (timeout_s, loopback)

    def _form(self, timeout_s: float, loopback: bool) -> None:
        """Learner rank 0 hosts a broadcast group; every engine worker joins it (the
        learners must be up: fail here if one cannot start)."""
        ray.get([learner.optimizer_step.remote() for learner in self.learners])
        host, port = ray.get(self.learners[0].weight_channel_address.remote(loopback))
        sizes = ray.get([e.num_workers.remote() for e in self.engines])
        world = 1 + sum(sizes)
        offsets = [1 + sum(sizes[:i]) for i in range(len(sizes))]
        ray.get(
            [
                self.learners[0].open_weight_channel.remote(
                    self.transport, host, port, world, timeout_s
                ),
                *(
                    e.open_weight_channel.remote(
                        self.transport, host, port, offset, world, timeout_s
                    )
                    for e, offset in zip(self.engines, offsets)
                ),
            ]
        )
        log.info(
            "weight sync: %s broadcast group of %d at %s:%d", self.transport, world, host, port
        )

    def sync(self, version: int, bucket_bytes: int) -> dict[str, Any]:
        if not self._formed:
            if self._group is None:
                raise RuntimeError("weight sync: open() first")
            self._form(*self._group)
            self._formed = True
        # Engines still busy (a prefetched generate under overlap) would leave the sender
        # waiting inside the collective, where gloo times out: wait until they are free.
        ray.get([e.weight_version.remote() for e in self.engines])
        sends = [learner.broadcast_weights.remote(bucket_bytes) for learner in self.learners]
        receives = [e.receive_weights.remote(version) for e in self.engines]
        pending = [*sends, *receives]
        while pending:  # the first failure (a dead actor, too) surfaces at once
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
        return ray.get(receives[0])
