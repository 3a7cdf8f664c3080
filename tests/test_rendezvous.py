"""Where rendezvous stores and groups listen: on their host only (torch's TCPStore alone
would listen on every interface), on loopback and on a node address that is not 127.0.0.1
(the multi-node case, tried on this machine where it has such an address)."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import psutil
import pytest
import torch

from policy.learner_store import bound_store
from rl.cluster.topology import free_port, is_loopback, private_env


def _node_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return addr.address
    return None


NODE = _node_address()
HOSTS = [
    "127.0.0.1",
    pytest.param(NODE, marks=pytest.mark.skipif(NODE is None, reason="no non-loopback address")),
]


def _my_listeners() -> set[tuple[str, int]]:
    me = psutil.Process().pid
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.pid == me and c.status == psutil.CONN_LISTEN
    }


@pytest.mark.parametrize("host", HOSTS)
def test_store_listens_on_its_host_only(host):
    port = free_port(host)
    before = _my_listeners()
    clients = []
    joiner = threading.Thread(
        target=lambda: clients.append(bound_store(host, port, 2, False, timedelta(seconds=30)))
    )
    joiner.start()  # the master waits for every member in its constructor
    store = bound_store(host, port, 2, True, timedelta(seconds=30))
    joiner.join(timeout=60)
    clients[0].set("k", "v")
    assert store.get("k") == b"v"
    new = {addr for addr in _my_listeners() - before if addr[1] == port}
    assert new and all(ip in (host, f"::ffff:{host}") for ip, _ in new), new


@pytest.mark.parametrize("host", HOSTS)
def test_gloo_weight_channel_meets_at_host(host):
    from rollout.broadcast import Channel

    port = free_port(host)
    got = {}

    def member(rank: int) -> None:
        channel = Channel("gloo", host, port, rank, 2, timeout_s=60)
        tensor = torch.arange(4.0) if rank == 0 else torch.zeros(4)
        channel.broadcast(tensor)
        got[rank] = tensor
        channel.close()

    threads = [threading.Thread(target=member, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert torch.equal(got[1], torch.arange(4.0))
    wildcard = [ip for ip, _ in _my_listeners() if ip in ("0.0.0.0", "::")]
    assert not wildcard, wildcard


def test_loopback_detection_and_private_env(monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.2") and not is_loopback("::")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    env = private_env()
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and env["RAY_AUTH_MODE"] == "token"
    assert (
        len(env["RAY_AUTH_TOKEN"]) >= 32
        and private_env()["RAY_AUTH_TOKEN"] != env["RAY_AUTH_TOKEN"]
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is kept
    assert "RAY_AUTH_MODE" not in private_env()


def test_private_bundle_address_runs_no_task(monkeypatch):
    import rl.cluster.topology as topology

    # a task's worker would linger as an idle ray::IDLE process; a private Ray is this machine
    monkeypatch.setattr(topology.ray, "remote", lambda *a, **k: pytest.fail("ran a Ray task"))
    host, port = topology.bundle_address(None, 0, True)  # type: ignore[arg-type]
    assert host == "127.0.0.1" and 0 < port < 65536
