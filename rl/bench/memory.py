"""Peak memory of a process tree for the benches (``sailrl bench trl``, ``sailrl bench rl``).

Two sums over a process and all its descendants (Ray's GCS and raylet, the actors, vLLM's
and the reward pool's children), sampled in a thread:

- **RSS** every ``interval_s``: what ``top`` shows per process; pages shared between
  processes (torch's libraries, mapped in every one of sailrl's) count once per process.
- **PSS** every ``pss_interval_s`` (``/proc/<pid>/smaps_rollup``, Linux): each shared page
  split among the processes that map it, so the sum is the tree's own use of the machine.

Each keeps its peak and the per-process values at that peak.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path


def pss_mb(pid: int) -> float | None:
    """Proportional set size of ``pid`` in MiB, or None where smaps_rollup is unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return None


class TreeMemory:
    """Samples the summed RSS and PSS of a process and all its descendants in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.2, pss_interval_s: float = 1.0) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peak_mb = 0.0
        self.peak_by_process: dict[str, float] = {}
        self.peak_pss_mb = 0.0
        self.peak_pss_by_process: dict[str, float] = {}
        self._pss_every = pss_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        import psutil

        last_pss = 0.0
        while not self._stop.is_set():
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            with_pss = time.monotonic() - last_pss >= self._pss_every
            total, now, pss_total, pss_now = 0.0, {}, 0.0, {}
            for p in procs:
                try:
                    mb = p.memory_info().rss / 2**20
                    name = f"{p.name()}[{p.pid}]"
                except psutil.NoSuchProcess:
                    continue
                total += mb
                now[name] = mb
                if with_pss:
                    pss = pss_mb(p.pid)
                    if pss is not None:
                        pss_total += pss
                        pss_now[name] = pss
            if total > self.peak_mb:
                self.peak_mb, self.peak_by_process = total, now
            if with_pss:
                last_pss = time.monotonic()
                if pss_total > self.peak_pss_mb:
                    self.peak_pss_mb, self.peak_pss_by_process = pss_total, pss_now
            self._stop.wait(interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def top(self, n: int = 6, pss: bool = False) -> dict[str, int]:
        """The ``n`` largest processes at the (RSS or PSS) peak, MiB."""
        values = self.peak_pss_by_process if pss else self.peak_by_process
        return {k: round(v) for k, v in sorted(values.items(), key=lambda kv: -kv[1])[:n]}
