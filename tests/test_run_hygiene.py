"""What a real `sailrl rl` run leaves open and behind: every listening socket of its processes
is on loopback; after SIGKILL of the driver its Ray processes go within seconds; a resumed
run holds every step exactly once in metrics.jsonl, samples.jsonl and TensorBoard.

Each test runs the CLI as a subprocess (the tiny recipe, a few steps) and watches its
process tree with psutil while it runs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration
SAILRL = [sys.executable, "-m", "rl.cli"]


def _start(run_dir: Path, *args: str, tmpdir: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if tmpdir:  # the run's temporary files land here (Ray's own session dir stays put)
        env.update(TMPDIR=tmpdir, RAY_TMPDIR=os.environ.get("RAY_TMPDIR", "/tmp"))
    env.pop("RAY_AUTH_MODE", None)
    cmd = [*SAILRL, "rl", "--config", str(ROOT / "configs/tiny-rl.yaml"), f"run.dir={run_dir}"]
    log = open(run_dir.parent / f"{run_dir.name}.log", "a")  # noqa: SIM115
    # Ctrl-C's default disposition, as a terminal gives it: a test run launched in the
    # background of a script inherits SIGINT ignored, and so would the run.
    return subprocess.Popen([*cmd, *args], cwd=ROOT, env=env, stdout=log, stderr=log,
                            preexec_fn=_default_sigint)  # fmt: skip


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def _listeners(procs: list[psutil.Process]) -> set[tuple[str, str, int]]:
    pids = {p.pid: p for p in procs}
    found = set()
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = pids[conn.pid].name()
            except psutil.NoSuchProcess:
                continue
            found.add((name, conn.laddr.ip, conn.laddr.port))
    return found


def _log(run_dir: Path) -> str:
    return (run_dir.parent / f"{run_dir.name}.log").read_text()[-3000:]


def test_every_listening_socket_of_a_run_is_loopback(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tmp = tempfile.mkdtemp(prefix="srl-")  # short: Ray's socket paths have a length limit
    proc = _start(run, "rl.steps=3", "rl.save_every=0", tmpdir=tmp)
    seen: set[tuple[str, str, int]] = set()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= _listeners(_tree(proc.pid))
        time.sleep(0.5)
    assert proc.wait(timeout=60) == 0, _log(run)
    names = {name for name, _, _ in seen}
    # not vacuous: Ray's own servers and the actors were all seen listening
    assert {"gcs_server", "raylet"} <= names, seen
    assert any(n.startswith("ray::") for n in names), seen
    open_ = sorted(s for s in seen if not _is_loopback(s[1]))
    assert not open_, f"listening beyond loopback: {open_}"
    left = _run_temp_dirs(tmp)  # pymp-*, sailrl-ray-*: all removed
    assert not left, left


def test_a_colocated_run_listens_on_loopback_only_and_starts_no_ray(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tmp = tempfile.mkdtemp(prefix="srl-")
    proc = _start(run, "rl.steps=3", "rl.save_every=0", "ray.colocate=true", tmpdir=tmp)
    seen: set[tuple[str, str, int]] = set()
    names: set[str] = set()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        tree = _tree(proc.pid)
        seen |= _listeners(tree)
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                names.add(p.name())
        time.sleep(0.5)
    assert proc.wait(timeout=60) == 0, _log(run)
    assert not {"gcs_server", "raylet"} & names and not any(n.startswith("ray::") for n in names)
    # not vacuous: the learner's single-rank store was seen listening
    assert seen, "no listening socket seen at all"
    open_ = sorted(s for s in seen if not _is_loopback(s[1]))
    assert not open_, f"listening beyond loopback: {open_}"
    left = _run_temp_dirs(tmp)
    assert not left, left


def _run_temp_dirs(tmp: str) -> list[str]:
    """What the run left in its TMPDIR, less the caches meant to outlive runs (torch's compile
    cache torchinductor_<user>, the Arrow copies of data files sailrl-datasets-<uid>), then
    removes the directory."""
    import shutil

    caches = ("torchinductor_", "sailrl-datasets-")
    left = sorted(p.name for p in Path(tmp).iterdir() if not p.name.startswith(caches))
    shutil.rmtree(tmp, ignore_errors=True)
    return left


def _steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def _tb_steps(tb_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in ("reward/mean", "time/step")}


def test_sigkill_between_checkpoints_then_resume_records_each_step_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    steps = ["rl.steps=6", "rl.save_every=2", "rl.probe_parity=false", "rl.log_samples=2"]
    proc = _start(run, *steps)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 600
    # kill after step 3 is logged: the checkpoint is step 2, so step 3 is written twice
    # unless the resumed run drops it
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and 3 in _steps(metrics):
            break
        time.sleep(0.2)
    assert proc.poll() is None, _log(run)
    tree = _tree(proc.pid)
    assert any(p.name().startswith("ray::") for p in tree if p.is_running())
    proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    proc.wait(timeout=30)
    left = []
    while time.monotonic() - killed < 10:
        left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"still running 10 s after SIGKILL: {[p.name() for p in left]}"
    assert 3 in _steps(metrics)

    proc = _start(run, *steps, "--resume", "auto")
    assert proc.wait(timeout=600) == 0, _log(run)
    assert _steps(metrics) == [1, 2, 3, 4, 5, 6]
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    pairs = Counter((r["step"], r["prompt_id"]) for r in rows)  # prompt ids are per step
    assert sorted({step for step, _ in pairs}) == [1, 2, 3, 4, 5, 6], pairs
    assert set(pairs.values()) == {1}, pairs
    for tag, seen in _tb_steps(run / "tb").items():
        assert seen == [1, 2, 3, 4, 5, 6], (tag, seen)
    leftover = list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"sailrl-ray-{proc.pid}-*"))
    assert not leftover, leftover


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_stops_everything_and_cleans_up(tmp_path, sig):
    run = tmp_path / "run"
    run.mkdir()
    tmp = tempfile.mkdtemp(prefix="srl-")
    proc = _start(run, "rl.steps=50", "rl.save_every=0", "rl.probe_parity=false", tmpdir=tmp)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and _steps(metrics):
            break
        time.sleep(0.2)
    assert proc.poll() is None, _log(run)
    tree = _tree(proc.pid)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == (143 if sig == signal.SIGTERM else 130), _log(run)
    time.sleep(3)  # the reaper's grace period
    left = [p.name() for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, left
    left = _run_temp_dirs(tmp)
    assert not left, left
