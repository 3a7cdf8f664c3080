"""Ray-free worker classes; ``rl.cluster.topology`` makes them Ray actors where they are placed.

Each worker owns one heavy object (a learner rank, a vLLM engine, a reward process pool)
and exposes typed methods; the driver calls them through actor handles and passes
ObjectRefs along (weights go learner -> engine without passing through the driver).
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any


def use_threads(threads: int | None) -> None:
    """Set this process's torch intra-op threads (None: leave them). Calls torch's own
    setter directly: vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op in
    the process that holds an in-process engine."""
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch._C.set_num_threads(threads)


def release_memory() -> None:
    """Hand the heap's free pages back to the system after a phase (glibc keeps them
    otherwise, so a learner idle during generation would still hold its training peak, and
    the engine its generation peak during training)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # not glibc (musl): nothing to trim
            return
        libc.malloc_trim(0)


class LearnerWorker:
    """One data-parallel learner rank (``policy.learner.Learner``)."""

    def __init__(
        self,
        model_dir: str,
        config: Any,
        rank: int,
        world_size: int,
        master_port: int,
        master_addr: str = "127.0.0.1",
        threads: int | None = None,
    ) -> None:
        # Rank 0's node address (loopback when Ray is private); its store listens only there.
        os.environ.update(
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(master_port),
            RANK=str(rank),
            LOCAL_RANK="0",
            WORLD_SIZE=str(world_size),
        )
        from policy.learner import Learner

        self.threads = threads  # torch threads of each phase (rl.cluster.topology.phase_threads)
        use_threads(threads)
        self.rank = rank
        self.learner = Learner.from_pretrained(model_dir, config)
        self.channel = None  # rank 0's end of the weight broadcast (rollout.broadcast)

    def train_step(self, groups: list, loss_fn: Any) -> dict[str, float]:
        """``groups``: this rank's ``rl.algos.batching.TrainGroup`` records (prompts once)."""
        use_threads(self.threads)
        try:
            return self.learner.train_step([s for g in groups for s in g.sequences()], loss_fn)
        finally:
            release_memory()

    def logprobs(self, seqs: list) -> list:
        use_threads(self.threads)
        try:
            return self.learner.logprobs(seqs)
        finally:
            release_memory()

    def export_weights(self, bucket_bytes: int) -> list:
        """Buckets of (public name, tensor) on rank 0; [] elsewhere (collective on ZeRO-3)."""
        use_threads(self.threads)
        buckets = list(self.learner.export_weights(bucket_bytes))
        return buckets if self.rank == 0 else []

    def weight_stream(self, bucket_bytes: int) -> Any:
        """The same buckets one at a time, for a consumer in this process
        (``rl.cluster.colocated``): at most one bucket of copies exists at once."""
        use_threads(self.threads)
        return self.learner.export_weights(bucket_bytes)

    def weight_channel_address(self, loopback: bool) -> tuple[str, int]:
        """Where this rank can host the weight broadcast group: 127.0.0.1 (everything on
        one machine) or this node's address (a cluster), and a free port there."""
        from rl.cluster.topology import rendezvous_address

        return rendezvous_address(loopback)

    def open_weight_channel(
        self, transport: str, host: str, port: int, world_size: int, timeout_s: float
    ) -> None:
        """Rank 0: host the broadcast group (returns once every engine worker has joined)."""
        from rollout.broadcast import Channel

        self.channel = Channel(transport, host, port, 0, world_size, timeout_s)

    def broadcast_weights(self, bucket_bytes: int) -> dict[str, float]:
        """Rank 0 broadcasts every bucket to the engines; other ranks only join the export
        (a collective under ZeRO-3)."""
        from rollout.broadcast import send_stream

        device = self.channel.device if self.channel is not None else "cpu"
        buckets = self.learner.export_weights(bucket_bytes, device=device)
        if self.rank != 0:
            for _ in buckets:
                pass
            return {}
        if self.channel is None:
            raise RuntimeError("no weight channel: open_weight_channel() first")
        stats = send_stream(self.channel, buckets)
        return {"sync/bytes": float(stats.num_bytes), "sync/buckets": float(stats.num_buckets)}

    def save(self, directory: str) -> None:
        self.learner.save(directory)

    def load(self, directory: str) -> None:
        self.learner.load(directory)

    def optimizer_step(self) -> int:
        return self.learner.step

    def weight_digest(self) -> list[float]:
        """Per-parameter sums of this rank's full weights (gathered under ZeRO-3), to check
        that data-parallel ranks agree."""
        weights = self.learner.state_dict_for_save(rank0_only=False)
        return [float(weights[name].double().sum()) for name in sorted(weights)]


class RolloutWorker:
    """One vLLM engine (``rollout.engine.RolloutEngine``)."""

    def __init__(self, config: Any, threads: int | None = None) -> None:
        from rollout.engine import RolloutEngine

        self.threads = threads  # torch threads of each phase (rl.cluster.topology.phase_threads)
        use_threads(threads)
        self.engine = RolloutEngine(config)

    def generate(self, requests: list, sampling: Any) -> Any:
        use_threads(self.threads)
        try:
            return self.engine.generate(requests, sampling)
        finally:
            release_memory()

    def update_weights(self, buckets: list, version: int) -> dict[str, float]:
        use_threads(self.threads)
        return _sync_metrics(self.engine.update_weights(buckets, version))

    def on_cuda(self) -> bool:
        """Whether this engine runs on CUDA (``rl.cluster.weight_sync`` resolves "auto")."""
        return self.engine.is_cuda

    def open_weight_channel(
        self, transport: str, host: str, port: int, rank_offset: int, world: int, timeout_s: float
    ) -> None:
        self.engine.open_weight_channel(transport, host, port, rank_offset, world, timeout_s)

    def num_workers(self) -> int:
        return self.engine.num_workers

    def receive_weights(self, version: int) -> dict[str, float]:
        return _sync_metrics(self.engine.receive_weights(version))

    def weight_version(self) -> int:
        return self.engine.weight_version

    def shutdown(self) -> None:
        self.engine.shutdown()


def _sync_metrics(stats: Any) -> dict[str, float]:
    return {
        "sync/seconds": stats.seconds,
        "sync/bytes": float(stats.num_bytes),
        "sync/buckets": float(stats.num_buckets),
    }


class RewardWorker:
    """The reward runtime (process pool with hard timeouts) behind one actor."""

    def __init__(self, config: Any) -> None:
        from rewards import RewardRuntime

        self.runtime = RewardRuntime(config)

    def score(self, batch: list) -> tuple[list, dict[str, Any]]:
        results = self.runtime.score(batch)
        return results, self.runtime.last_stats.as_dict()

    def close(self) -> None:
        self.runtime.close()
