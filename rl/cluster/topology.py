"""Where actors run: Ray start-up on loopback (or an existing cluster) and actor placement.

Worker classes are plain Python (``rl.cluster.workers``); ``ray.remote`` is applied here, at placement
time, so the same classes run in unit tests without Ray.

On one machine (``ray.address: null``) Ray is private: every process it starts (GCS,
raylet, object manager, workers, agents) listens on 127.0.0.1 only, no dashboard runs, and
token authentication is on with a fresh per-run token (``RAY_AUTH_TOKEN`` in the
environment of the run's processes; nothing is written to ``~/.ray``). Ray rewrites a
loopback ``_node_ip_address`` to the machine's routable address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the flag that makes Ray single-machine on
macOS/Windows), which ``start_ray`` sets; it checks the node address afterwards.

On a cluster, start Ray on every node yourself (``ray start --head`` / ``ray start
--address=HEAD:6379``, with ``RAY_AUTH_MODE=token``; see docs/config.md) and set
``ray.address: auto`` (or ``HEAD:6379``); the placement below then spreads learner ranks and
rollout engines over the cluster's GPUs, and their rendezvous use the nodes' addresses.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from policy.learner_store import is_loopback
from rl.run.resources import RayConfig, phase_cores

log = logging.getLogger(__name__)


def private_env() -> dict[str, str]:
    """Environment that makes a Ray started by this process private (see module doc)."""
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    if os.environ.get("RAY_AUTH_MODE") is None:  # an explicit choice is the user's
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32)
    return env


def object_store_bytes(cfg: RayConfig, weight_bytes: int, memory_bytes: int) -> int:
    """A private Ray's object store: ``ray.object_store_mib``, or room for two copies of
    the weights (the buckets of one sync, in flight while the last one is released) plus
    256 MiB for rollouts and batches, at most Ray's own default (30% of memory)."""
    if cfg.object_store_mib is not None:
        return cfg.object_store_mib << 20
    return min(2 * weight_bytes + (256 << 20), max(80 << 20, int(0.3 * memory_bytes)))


def start_ray(
    cfg: RayConfig, runtime_env: dict[str, Any] | None = None, store_bytes: int | None = None
) -> None:
    """Start (or join) Ray once per process; ``runtime_env`` adds job-level runtime
    environment fields (e.g. ``py_modules`` of reward plug-ins, rl.cluster.plugins);
    ``store_bytes`` sizes a private Ray's object store (None: Ray's default)."""
    if ray.is_initialized():
        return
    # vLLM's per-step INFO/WARNING lines drown the progress bar; VLLM_LOGGING_LEVEL=INFO
    # in the environment brings them back.
    env = {
        **(runtime_env or {}),
        "env_vars": {
            "TOKENIZERS_PARALLELISM": "false",
            "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "ERROR"),
        },
    }
    if cfg.address:
        # Token authentication, when the cluster has it, comes from RAY_AUTH_MODE=token and
        # the token in RAY_AUTH_TOKEN or ~/.ray/auth_token (docs/config.md).
        ray.init(address=cfg.address, runtime_env=env, log_to_driver=True)
        return
    # Temporary files of the run's actors (multiprocessing's pymp-*, torch, vLLM) go to one
    # directory that is removed when this process exits (or by the next run after a kill).
    env["env_vars"]["TMPDIR"] = run_tmpdir()
    os.environ.update(private_env())
    # Ray read both settings when it was imported (this module imports it): refresh them
    # there as Ray's own token set-up does (Config.initialize re-reads RAY_AUTH_MODE).
    from ray._private import ray_constants
    from ray._raylet import AuthenticationTokenLoader, Config

    start_reaper()
    ray_constants.ENABLE_RAY_CLUSTER = False
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()
    on_term = signal.getsignal(signal.SIGTERM)
    ray.init(
        num_cpus=cfg.num_cpus or max(4, os.cpu_count() or 1),
        include_dashboard=False,
        object_store_memory=store_bytes,
        _node_ip_address="127.0.0.1",
        runtime_env=env,
        configure_logging=False,
        log_to_driver=True,
        # Ray would start one worker when this driver connects, for a first task that never
        # comes (actors get their own workers): an idle ~80 MB process and CPU at start-up.
        _system_config={"prestart_worker_first_driver": False},
    )
    # Ray's head replaces the SIGTERM handler with one that kills its processes and exits 1
    # at once; the CLI's own (unwind like Ctrl-C: actors stop while Ray is still up) wins.
    if callable(on_term) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    atexit.register(ray.shutdown)  # before Ray's own hook, so the TMPDIR goes after it
    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip) and os.environ.get("RAY_AUTH_MODE") != "token":
        ray.shutdown()
        raise RuntimeError(
            f"private Ray came up on {node_ip}, not loopback, without token authentication; "
            "unset RAY_AUTH_MODE (sailrl then turns token authentication on)"
        )


TMP_PREFIX = "sailrl-ray-"
_REAPERS: list[subprocess.Popen] = []


def start_reaper() -> None:
    """``rl/cluster/reaper.py`` watching this process: when it exits (even by SIGKILL) the Ray
    processes it started stop within about a second (see that file for why)."""
    if _REAPERS or not sys.platform.startswith("linux"):
        return
    script = Path(__file__).with_name("reaper.py")
    # Our end of its stdin stays open (not inherited by children) until we exit.
    _REAPERS.append(
        subprocess.Popen(
            [sys.executable, str(script), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_tmpdir() -> str:
    """A fresh ``sailrl-ray-<pid>-*`` temporary directory, removed at exit; those of driver
    processes that are gone (killed) are removed first."""
    for stale in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        owner = stale.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(stale, ignore_errors=True)
    path = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
    atexit.register(shutil.rmtree, path, True)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def rendezvous_address(private: bool) -> tuple[str, int]:
    """Where a group hosted in this process can listen: 127.0.0.1 when Ray is private to
    this machine, else this node's address from Ray; and a port free there."""
    host = "127.0.0.1" if private else ray.util.get_node_ip_address()
    return host, free_port(host)


def bundle_address(placement: Placement, bundle: int, private: bool) -> tuple[str, int]:
    """``rendezvous_address`` as seen from the node that holds ``bundle`` of ``placement``
    (rank 0 of the learner group hosts its store there). A private Ray is this machine:
    no task (its worker would stay as an idle ``ray::IDLE`` process of ~300 MB)."""
    if private:
        return rendezvous_address(True)
    task = ray.remote(num_cpus=0)(rendezvous_address)
    return ray.get(task.options(scheduling_strategy=placement.strategy(bundle)).remote(private))


@dataclass
class Placement:
    """One placement group and the bundle each role's actors use."""

    group: PlacementGroup
    learner_bundles: list[int]
    rollout_bundles: list[int]

    def strategy(self, bundle: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=bundle)

    def remove(self) -> None:
        remove_placement_group(self.group)


def phase_threads(
    cfg: RayConfig, num_learners: int, num_rollouts: int, overlap: bool, cores: int
) -> tuple[int | None, int | None]:
    """Torch threads of (each learner rank, each rollout engine), None: leave Ray's.

    Only a private Ray (one machine) with ``ray.phase_threads``: with the synchronous loop
    the phases alternate, so the phase that runs gets every core (``ray.num_cpus`` caps
    them), shared among its own actors; with ``rl.overlap`` generation and training run at
    once and split the cores in proportion to their ``ray.*_cpus``, at least one each.
    On GPUs the threads only feed the devices and Ray's setting stays."""
    if not cfg.private or not cfg.phase_threads or cfg.learner_gpus or cfg.rollout_gpus:
        return None, None
    cores = phase_cores(cfg, cores)
    if not overlap:
        return max(1, cores // num_learners), max(1, cores // num_rollouts)
    want_l = num_learners * cfg.learner_cpus
    share = want_l / (want_l + num_rollouts * cfg.rollout_cpus)
    learner_cores = min(cores - 1, max(1, round(cores * share))) if cores > 1 else 1
    rollout_cores = max(1, cores - learner_cores)
    return max(1, learner_cores // num_learners), max(1, rollout_cores // num_rollouts)


def place(cfg: RayConfig, num_learners: int, num_rollouts: int) -> Placement:
    """Reserve one bundle per learner rank and per rollout engine, each on its own resources."""

    def bundle(cpus: float, gpus: float) -> dict[str, float]:
        res = {"CPU": cpus}
        if gpus:
            res["GPU"] = gpus
        return res

    bundles = [bundle(cfg.learner_cpus, cfg.learner_gpus)] * num_learners
    bundles += [bundle(cfg.rollout_cpus, cfg.rollout_gpus)] * num_rollouts
    group = placement_group(bundles, strategy="PACK")
    ready, _ = ray.wait([group.ready()], timeout=120)
    if not ready:
        raise RuntimeError(
            f"Ray could not reserve {bundles}: not enough free resources "
            f"(available: {ray.available_resources()}). Lower rl.num_learners / "
            "rl.num_rollout_engines or the per-actor ray.* resources."
        )
    learners = list(range(num_learners))
    return Placement(group, learners, list(range(num_learners, num_learners + num_rollouts)))


def remote_actor(cls: type, placement: Placement, bundle: int, cpus: float, gpus: float, **kw: Any):
    """Create ``cls`` as a Ray actor in ``bundle`` of ``placement``."""
    actor_cls = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(cls)
    return actor_cls.options(scheduling_strategy=placement.strategy(bundle)).remote(**kw)
