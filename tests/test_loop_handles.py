"""The loop's view of the cluster (rl.loop.handles.Cluster) and the Ray implementation
(rl.cluster.actors.Cluster) agree method by method, so the driver can only call what the
cluster provides."""

from __future__ import annotations

import inspect

from rl.cluster.actors import Cluster as RayCluster
from rl.loop.handles import Cluster


def _params(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def test_ray_cluster_implements_every_method_of_the_loop_view():
    wanted = {
        n: _params(f)
        for n, f in vars(Cluster).items()
        if inspect.isfunction(f) and not n.startswith("_")
    }
    assert {"launch_generate", "collect", "train_step", "sync_weights", "save"} <= set(wanted)
    missing = sorted(n for n in wanted if not callable(getattr(RayCluster, n, None)))
    assert not missing, f"rl.cluster.actors.Cluster lacks {missing}"
    differ = {n: (p, _params(getattr(RayCluster, n))) for n, p in wanted.items()}
    differ = {n: pair for n, pair in differ.items() if pair[0] != pair[1]}
    assert not differ, f"parameters differ (loop view, Ray cluster): {differ}"
