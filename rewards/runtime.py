"""The reward runtime: score a batch, count outcomes, refuse to fail silently.

    >>> from rewards import RewardInput, RewardRuntime, RewardsConfig, RuntimeConfig
    >>> config = RewardsConfig(runtime=RuntimeConfig(isolation=False))
    >>> with RewardRuntime(config) as runtime:
    ...     results = runtime.score([RewardInput("<think>1+1=2</think>\\\\boxed{2}", "2")])
    >>> results[0].reward, results[0].outcome
    (1.0, 'ok')

With ``isolation`` on (the default) samples are scored in worker processes with a hard
per-sample timeout; the same object works in the main thread, in other threads and inside a
Ray actor (wrap the class with ``ray.remote`` where it is placed).
"""

from __future__ import annotations

import math
import threading
import time
import weakref

from rewards.config import RewardsConfig
from rewards.pool import RewardRuntimeError, WorkerPool
from rewards.records import RewardInput, RewardResult, RewardStats, stats_of
from rewards.registry import load_object, reward_paths
from rewards.scoring import Scorer, precheck

__all__ = ["RewardRuntime", "RewardRuntimeError", "ErrorRateExceeded"]


class ErrorRateExceeded(RewardRuntimeError):
    """More samples of a batch ended with outcome ``error`` or ``timeout`` than
    ``runtime.max_error_rate`` allows (or every sample did). ``results`` and ``stats`` hold the
    scored batch."""

    def __init__(self, message: str, results: list[RewardResult], stats: RewardStats):
        super().__init__(message)
        self.results = results
        self.stats = stats

    def __reduce__(self):  # picklable across processes / Ray actors with its fields
        return (type(self), (str(self), self.results, self.stats))


class RewardRuntime:
    """Scores batches of :class:`RewardInput` with the rewards of a :class:`RewardsConfig`.

    ``stats`` accumulates over every batch, ``last_stats`` is the latest batch. Use it as a
    context manager (or call :meth:`close`) so worker processes stop.
    """

    def __init__(self, config: RewardsConfig | None = None):
        self.config = config or RewardsConfig()
        self.paths = reward_paths(self.config)
        # Import user rewards here too, so a wrong path fails now with a clear message
        # instead of inside a worker.
        for path in self.paths.values():
            if not path.startswith("rewards."):
                load_object(path)
        self.stats = RewardStats()
        self.last_stats = RewardStats()
        self._lock = threading.Lock()
        self._scorer: Scorer | None = None
        self._pool: WorkerPool | None = None
        if self.config.runtime.isolation:
            self._pool = WorkerPool(self.config, self.paths)
            self._finalizer = weakref.finalize(self, self._pool.close)
        else:
            self._scorer = Scorer(self.config, self.paths)

    def score(self, batch: list[RewardInput]) -> list[RewardResult]:
        """One result per input, in order. Raises :class:`ErrorRateExceeded` after scoring when
        too many samples errored."""
        with self._lock:
            start = time.perf_counter()
            results: list[RewardResult | None] = [precheck(item, self.config) for item in batch]
            todo = [i for i, r in enumerate(results) if r is None]
            restarts_before = self._pool.restarts if self._pool else 0
            if self._pool is not None:
                if not self._pool._workers:
                    raise RewardRuntimeError("the reward runtime is closed; create a new one")
                workers = self.config.runtime.workers
                chunk = max(
                    1, min(self.config.runtime.chunk_size, math.ceil(len(todo) / (workers * 4)))
                )
                scored = self._pool.score([batch[i] for i in todo], chunk)
            else:
                assert self._scorer is not None
                scored = self._scorer.score_many([batch[i] for i in todo])
            for i, result in zip(todo, scored):
                results[i] = result
            restarts = (self._pool.restarts if self._pool else 0) - restarts_before
            final: list[RewardResult] = results  # type: ignore[assignment]
            self.last_stats = stats_of(final, time.perf_counter() - start, restarts)
            self.stats = self.stats.merged(self.last_stats)
        self._check_errors(final)
        return final

    def _check_errors(self, results: list[RewardResult]) -> None:
        """Timeouts and errors count together: a reward that always hangs is as broken as
        one that always raises (``max_error_rate: 1`` opts out)."""
        failed = [r for r in results if r.outcome in ("error", "timeout")]
        limit = self.config.runtime.max_error_rate
        if not failed or len(failed) <= limit * len(results):
            return
        timeouts = sum(r.outcome == "timeout" for r in failed)
        names = ", ".join(f"{name!r} ({path})" for name, path in self.paths.items())
        share = (
            "every sample"
            if len(failed) == len(results)
            else f"{len(failed)} of {len(results)} samples ({len(failed) / len(results):.0%}, "
            f"above runtime.max_error_rate={limit:g})"
        )
        raise ErrorRateExceeded(
            f"reward {names}: {share} ended in error or timeout ({len(failed) - timeouts} "
            f"error, {timeouts} timeout). First: {failed[0].error}. Fix the reward, or raise "
            "runtime.timeout_s / runtime.max_error_rate.",
            results,
            self.last_stats,
        )

    def close(self) -> None:
        """Stop the worker processes; the runtime cannot score afterwards."""
        if self._pool is not None:
            self._finalizer()

    def __enter__(self) -> RewardRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
