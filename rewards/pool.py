"""Worker processes that score chunks of samples with a hard per-sample timeout.

Each worker gets a chunk of samples in one message and sends back one small result per sample,
so the parent always knows which sample a worker is on. When a worker sends nothing for
``timeout_s`` it is killed (SIGKILL: sympy can hang while holding the GIL, so nothing softer
works), the sample it was on ends as ``timeout``, and a fresh worker takes the rest of the
chunk. A worker that dies ends its sample as ``error`` the same way.

Workers start through 'forkserver' (or 'spawn'), never 'fork', which is unsafe in threads and
Ray actors. The forkserver preloads sympy and math-verify, so a replacement starts in
milliseconds.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from rewards.config import RewardsConfig
from rewards.records import RewardInput, RewardResult

PRELOAD = ["rewards.math_answer", "rewards.scoring"]
Item = tuple[int, RewardInput]


class RewardRuntimeError(RuntimeError):
    """The reward runtime cannot go on (workers cannot start, too many errors)."""


def _worker_main(
    conn: Connection, config: RewardsConfig, paths: dict[str, str], sys_path: list[str]
) -> None:
    # The parent handles Ctrl-C and closes workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path[:] = sys_path
    from rewards.scoring import Scorer

    try:
        scorer = Scorer(config, paths)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("init_error", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        chunk = conn.recv()
        if chunk is None:
            return
        if scorer.batched:
            # TRL-style rewards score the whole chunk in one call: tell the parent, so its
            # deadline covers the chunk (and a hang times out every sample of it).
            conn.send(("batch", len(chunk)))
            for (index, _), result in zip(chunk, scorer.score_many([i for _, i in chunk])):
                conn.send((index, result))
            continue
        for index, item in chunk:
            conn.send((index, scorer.score(item)))


@dataclass(eq=False)  # compared by identity
class _Worker:
    process: Any
    conn: Connection
    started: float
    ready: bool = False
    pending: collections.deque = field(default_factory=collections.deque)
    deadline: float = 0.0
    batch: int = 0  # samples of a batched call still to come back


class WorkerPool:
    """A fixed number of scoring processes; :meth:`score` runs one batch on them."""

    def __init__(self, config: RewardsConfig, paths: dict[str, str]):
        self.config = config
        self.paths = paths
        self.restarts = 0
        self._ctx = multiprocessing.get_context(config.runtime.start_method)
        if config.runtime.start_method == "forkserver":
            # Only takes effect if this process has not started a forkserver yet.
            self._ctx.set_forkserver_preload(PRELOAD)
        self._workers = [self._start() for _ in range(config.runtime.workers)]

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.config, self.paths, list(sys.path)),
            name="sailrl-reward-worker",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent, time.monotonic())

    def _stop(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()

    def _replace(self, worker: _Worker) -> _Worker:
        self._stop(worker)
        self.restarts += 1
        fresh = self._start()
        fresh.pending = worker.pending
        fresh.deadline = fresh.started + self.config.runtime.startup_timeout_s
        return fresh

    def _assign(self, worker: _Worker, chunk: list[Item]) -> None:
        worker.pending.extend(chunk)
        if worker.ready:
            worker.conn.send(chunk)
            worker.deadline = time.monotonic() + self.config.runtime.timeout_s
        else:
            worker.deadline = worker.started + self.config.runtime.startup_timeout_s

    def score(self, items: list[RewardInput], chunk_size: int) -> list[RewardResult]:
        """Results of ``items`` in order; each sample is bounded by the per-sample timeout."""
        results: list[RewardResult | None] = [None] * len(items)
        chunks = collections.deque(
            [list(enumerate(items))[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
        )
        for worker in self._workers:
            if chunks:
                self._assign(worker, chunks.popleft())
        while any(w.pending for w in self._workers):
            busy = {w.conn: w for w in self._workers if w.pending}
            now = time.monotonic()
            ready = wait(list(busy), timeout=max(0.0, min(w.deadline for w in busy.values()) - now))
            for conn in ready:
                self._receive(busy[conn], results, chunks)
            now = time.monotonic()
            for i, worker in enumerate(self._workers):
                if worker.pending and now >= worker.deadline and worker.conn not in ready:
                    self._workers[i] = self._expire(worker, results, chunks)
        return results  # type: ignore[return-value]

    def _receive(self, worker: _Worker, results: list, chunks: collections.deque) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._workers[self._workers.index(worker)] = self._died(worker, results, chunks)
            return
        if message[0] == "init_error":
            self.close()
            raise RewardRuntimeError(f"reward worker could not load the rewards: {message[1]}")
        if message[0] == "batch":
            worker.batch = message[1]
            worker.deadline = time.monotonic() + self.config.runtime.timeout_s * message[1]
            return
        if message[0] == "ready":
            worker.ready = True
            if worker.pending:
                worker.conn.send(list(worker.pending))
                worker.deadline = time.monotonic() + self.config.runtime.timeout_s
            return
        index, result = message
        worker.batch = max(0, worker.batch - 1)
        done_index, _ = worker.pending.popleft()
        assert done_index == index, f"worker answered sample {index}, expected {done_index}"
        results[index] = result
        worker.deadline = time.monotonic() + self.config.runtime.timeout_s
        if not worker.pending and chunks:
            self._assign(worker, chunks.popleft())

    def _expire(self, worker: _Worker, results: list, chunks: collections.deque) -> _Worker:
        if not worker.ready:
            self.close()
            raise RewardRuntimeError(
                f"a reward worker did not start within runtime.startup_timeout_s="
                f"{self.config.runtime.startup_timeout_s:g} s; raise it or check the machine's load"
            )
        limit = self.config.runtime.timeout_s
        # A hung batched call times out every sample of its batch; else the one sample.
        for _ in range(max(1, min(worker.batch, len(worker.pending)))):
            index, _ = worker.pending.popleft()
            results[index] = RewardResult(
                0.0,
                {},
                "timeout",
                f"scoring took longer than runtime.timeout_s={limit:g} s"
                + (" per sample of its batch" if worker.batch else ""),
            )
        return self._after_loss(worker, chunks)

    def _died(self, worker: _Worker, results: list, chunks: collections.deque) -> _Worker:
        worker.process.join(timeout=10)
        code = worker.process.exitcode
        if not worker.ready:
            self.close()
            raise RewardRuntimeError(f"a reward worker exited with code {code} while starting")
        for _ in range(max(1, min(worker.batch, len(worker.pending)))):
            index, _ = worker.pending.popleft()
            results[index] = RewardResult(
                0.0,
                {},
                "error",
                f"reward worker died (exit code {code}) on this sample"
                + (" or another of its batch" if worker.batch else ""),
            )
        return self._after_loss(worker, chunks)

    def _after_loss(self, worker: _Worker, chunks: collections.deque) -> _Worker:
        fresh = self._replace(worker)
        if not fresh.pending and chunks:
            self._assign(fresh, chunks.popleft())
        return fresh

    def close(self) -> None:
        """Stop every worker (politely, then by force)."""
        for worker in self._workers:
            with contextlib.suppress(OSError, ValueError):  # a worker already gone
                worker.conn.send(None)
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=10)
            worker.conn.close()
        self._workers = []
