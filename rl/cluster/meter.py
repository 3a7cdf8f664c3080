"""What the RL driver moves through Ray and the CPU it spends, per step (``sailrl bench rl``,
which stamps ``take()`` into every logged step).

Bytes are measured where the driver meets Ray, with Ray's own serializer: every argument
of an actor call the driver makes (``ActorMethod._remote``; an ObjectRef passed on counts 0,
its data goes actor to actor), every object it puts (``ray.put``) and every result it
fetches (``ray.get``; each object once), re-serialised to the size Ray's object format
gives it (``total_bytes``). Driver CPU is the process CPU time of the driver
(``time.process_time``: its own and Ray's threads in it) between two ``take()`` calls, less
the meter's own CPU. Installed by the bench only.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any


class RayMeter:
    """Counters of the driver's Ray traffic and CPU (``ray/*``, ``driver/*``), per ``take()``."""

    def __init__(self) -> None:
        self.bytes: Counter[str] = Counter()
        self._method: dict[str, str] = {}  # result ref -> the actor method that returns it
        self._seen: set[str] = set()
        self._overhead = [0.0, 0.0]  # meter's own CPU and wall seconds
        self._cpu = time.process_time()
        self._undo: list[tuple[Any, str, Any]] = []

    def _size(self, value: Any) -> int:
        import ray

        start_cpu, start = time.process_time(), time.perf_counter()
        worker = ray._private.worker.global_worker
        size = int(worker.get_serialization_context().serialize(value).total_bytes)
        self._overhead[0] += time.process_time() - start_cpu
        self._overhead[1] += time.perf_counter() - start
        return size

    def install(self) -> None:
        import ray
        from ray.actor import ActorMethod

        meter, remote, get, put = self, ActorMethod._remote, ray.get, ray.put

        def counted_remote(method, args=None, kwargs=None, **options):
            values = [*(args or ()), *(kwargs or {}).values()]
            sent = sum(meter._size(v) for v in values if not isinstance(v, ray.ObjectRef))
            meter.bytes[f"ray/sent_bytes/{method._method_name}"] += sent
            refs = remote(method, args, kwargs, **options)
            for ref in refs if isinstance(refs, list) else [refs]:
                meter._method[ref.hex()] = method._method_name
            return refs

        def counted_get(refs, *a, **kw):
            values = get(refs, *a, **kw)
            many = isinstance(refs, list)
            for ref, value in zip(refs if many else [refs], values if many else [values]):
                if ref.hex() not in meter._seen:
                    meter._seen.add(ref.hex())
                    name = meter._method.pop(ref.hex(), "other")
                    meter.bytes[f"ray/received_bytes/{name}"] += meter._size(value)
            return values

        def counted_put(value, *a, **kw):
            meter.bytes["ray/sent_bytes/put"] += meter._size(value)
            return put(value, *a, **kw)

        for owner, name, new in (
            (ActorMethod, "_remote", counted_remote),
            (ray, "get", counted_get),
            (ray, "put", counted_put),
        ):
            self._undo.append((owner, name, getattr(owner, name)))
            setattr(owner, name, new)

    def uninstall(self) -> None:
        for owner, name, old in reversed(self._undo):
            setattr(owner, name, old)
        self._undo.clear()

    def take(self) -> dict[str, float]:
        """This step's counters (since the last take), then reset."""
        now = time.process_time()
        out = {k: float(v) for k, v in sorted(self.bytes.items())}
        out["ray/sent_bytes"] = sum(v for k, v in out.items() if k.startswith("ray/sent_"))
        out["ray/received_bytes"] = sum(v for k, v in out.items() if k.startswith("ray/recei"))
        out["driver/cpu_s"] = now - self._cpu - self._overhead[0]
        out["driver/meter_cpu_s"], out["driver/meter_s"] = self._overhead
        self.bytes.clear()
        self._overhead = [0.0, 0.0]
        self._cpu = time.process_time()
        return out
