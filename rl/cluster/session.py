"""``connect``: the cluster of one run as a context manager (``rl.loop.handles.Connect``).

``ray.colocate: true`` runs the learner, the engine and the reward runtime in this process
(``rl.cluster.colocated``), without Ray; otherwise they are Ray actors (``rl.cluster.actors``)
and Ray's errors stop here: a method that raised inside an actor comes out as that actor's
own error (bad checkpoint, reward, input), an actor that died as ``ActorFailure``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rl.loop.handles import ActorFailure, Cluster


@contextmanager
def connect(cfg: Any, model_dir: str) -> Iterator[Cluster]:
    """Start the actors of ``cfg`` on ``model_dir``, yield their ``Cluster``, stop them."""
    if cfg.ray.colocate:  # Ray is not started (nor imported here)
        from rl.cluster.colocated import ColocatedCluster

        cluster = ColocatedCluster(cfg, model_dir)
        try:
            yield cluster
        finally:
            cluster.shutdown()
        return
    import ray

    from rl.cluster.actors import Cluster as RayCluster
    from rl.cluster.actors import root_cause

    cluster = None
    try:
        cluster = RayCluster(cfg, model_dir)
        yield cluster
    except ray.exceptions.RayError as err:
        cause = root_cause(err)
        if not isinstance(cause, ray.exceptions.RayError):
            raise cause from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ActorFailure(f"an actor died during the run ({first}).") from err
    finally:
        if cluster is not None:
            cluster.shutdown()


def stop_ray() -> None:
    """Stop this process's Ray (benchmarks that run several experiments in a row)."""
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()
