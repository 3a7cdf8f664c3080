"""Stops the Ray processes of a private run when its driver dies, even by SIGKILL.

Ray's own fate sharing (PR_SET_PDEATHSIG on Linux) covers the processes the driver starts
itself (GCS, raylet); workers exit when the raylet goes. Its dashboard and runtime-env
agents, children of the raylet, notice the raylet's death but then wait up to 60 s on a
GCS that is gone, still listening. Ray's reaper would fix it, but it is only used where
kernel fate sharing is missing, and it makes the driver a process-group leader (which
takes the terminal's Ctrl-C away from it).

This script is that reaper without the process group: ``start_ray`` starts it with the
driver's pid and a pipe on its stdin. Every half second it records the driver's Ray
descendants (from /proc); when the pipe closes (the driver exited, however it did), it
sends SIGTERM to those still alive, then SIGKILL a second later. Linux only; it imports
nothing of sailrl.

    python rl/cluster/reaper.py DRIVER_PID
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), fields[19])
    return table


def _is_ray(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"ray" in fh.read()
    except OSError:
        return False


def ray_descendants(root: int) -> dict[int, str]:
    """pid -> start time of the Ray processes below ``root``."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if child != os.getpid() and _is_ray(child):
                found[child] = table[child][1]
    return found


def _still(pids: dict[int, str]) -> dict[int, str]:
    table = _processes()
    return {p: t for p, t in pids.items() if p in table and table[p][1] == t}


def reap(pids: dict[int, str], grace_s: float = 1.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``, each process still the one recorded."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _still(pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while _still(pids) and time.monotonic() < deadline:
            time.sleep(0.1)


def main(driver: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    seen: dict[int, str] = {}
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.5)
        if ready and not os.read(sys.stdin.fileno(), 1024):
            break  # EOF: the driver is gone
        seen = {**_still(seen), **ray_descendants(driver)}
    reap(seen)


if __name__ == "__main__":
    main(int(sys.argv[1]))
