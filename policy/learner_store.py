"""A torch.distributed TCPStore that listens on one address only.

torch's TCPStore server binds every interface whatever host it is given; a store on a
learner or SFT process would then accept connections from the network. Binding the socket
ourselves and handing it over (``master_listen_fd``) keeps it on ``host`` (127.0.0.1 for a
run on one machine, the node's address on a cluster).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import timedelta

from torch.distributed import TCPStore


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``).

    >>> is_loopback("127.0.0.1"), is_loopback("::ffff:127.0.0.1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


def bound_store(
    host: str, port: int, world_size: int, is_master: bool, timeout: timedelta
) -> TCPStore:
    """The store of a group meeting at ``host:port``; rank 0 (``is_master``) listens there
    and nowhere else. On loopback, gloo's own pair sockets are kept there too."""
    if is_loopback(host) and "lo" in {name for _, name in socket.if_nameindex()}:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
    if not is_master:
        return TCPStore(host, port, world_size, is_master=False, timeout=timeout)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(max(128, world_size))
    # The store owns the descriptor from here on (it closes it when it stops).
    return TCPStore(
        host, port, world_size, is_master=True, timeout=timeout, master_listen_fd=sock.detach()
    )
