"""The bench's Ray meter counts what the driver sends to and fetches from actors, per method,
each fetched object once, and hands it out per step (``rl.cluster.meter``)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_meter_counts_arguments_and_results_per_method():
    import ray

    from rl.cluster.meter import RayMeter

    class Echo:  # defined here: pickled by value, the worker cannot import tests/
        def back(self, payload: bytes, n: int) -> bytes:
            return payload[:n]

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    originals = (ray.get, ray.put)
    meter = RayMeter()
    meter.install()
    try:
        actor = ray.remote(num_cpus=0)(Echo).remote()
        payload = b"x" * 200_000
        ref = actor.back.remote(payload, 50_000)
        ray.get(ref)
        ray.get([ref])  # fetched again: counted once
        step = meter.take()
        assert 200_000 <= step["ray/sent_bytes/back"] < 201_000
        assert 50_000 <= step["ray/received_bytes/back"] < 51_000
        assert step["ray/sent_bytes"] == step["ray/sent_bytes/back"]
        assert step["driver/cpu_s"] >= 0.0
        assert meter.take()["ray/sent_bytes"] == 0.0  # a new step starts empty
        passed_on = actor.back.remote(ray.put(payload), 10)  # a ref: its data stays in Ray
        ray.get(passed_on)
        step = meter.take()
        assert step["ray/sent_bytes/back"] < 100
        assert 200_000 <= step["ray/sent_bytes/put"] < 201_000
    finally:
        meter.uninstall()
        ray.shutdown()
    assert (ray.get, ray.put) == originals  # uninstalled
