"""Weight sync by collective broadcast: the wire shared by learner rank 0 (sender, rank 0 of
the group) and every rollout worker (receivers, ranks 1..N).

Transports: ``nccl`` (CUDA; vLLM's ``PyNcclCommunicator`` on a stateless group, so the
learner's own torch.distributed group is untouched) and ``gloo`` (CPU tensors; what the
tests run, and a fallback on machines whose GPUs cannot talk NCCL to each other).

One update is a stream of messages, each three broadcasts from rank 0::

    header  int64[3] = (kind, layout bytes, data bytes)    kind: BUCKET, END or ABORT
    layout  uint8[layout bytes]: JSON names, dtypes, shapes, byte offsets
    data    uint8[data bytes]:   the bucket's tensors packed at 16-byte aligned offsets

The stream describes itself, so the receivers need no plan agreed in advance and the two
sides cannot disagree on shapes. Neither side leaves the other waiting on an
application-level error: a sender that fails mid-update sends ABORT, and a receiver whose
load fails keeps draining the stream to END before it raises. (A dead process is the
caller's to handle: Ray reports it and the RL driver stops every actor.)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch

from policy.learner_store import bound_store, is_loopback

BUCKET, END, ABORT = 1, 0, -1
ALIGN = 16

NamedTensors = Sequence[tuple[str, torch.Tensor]]


@dataclass(frozen=True)
class Layout:
    """Where each tensor of one packed bucket lives."""

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    nbytes: int

    def to_bytes(self) -> bytes:
        fields = {
            "names": self.names,
            "dtypes": self.dtypes,
            "shapes": self.shapes,
            "offsets": self.offsets,
            "nbytes": self.nbytes,
        }
        return json.dumps(fields).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Layout:
        fields = json.loads(raw)
        return cls(
            names=tuple(fields["names"]),
            dtypes=tuple(fields["dtypes"]),
            shapes=tuple(tuple(s) for s in fields["shapes"]),
            offsets=tuple(fields["offsets"]),
            nbytes=int(fields["nbytes"]),
        )


def layout_of(bucket: NamedTensors) -> Layout:
    """The packing of ``bucket``: tensors in order, each at an offset aligned to 16 bytes.

    >>> layout_of([("a", torch.zeros(3)), ("b", torch.zeros(2, dtype=torch.bfloat16))])
    Layout(names=('a', 'b'), dtypes=('float32', 'bfloat16'), shapes=((3,), (2,)), \
offsets=(0, 16), nbytes=20)
    """
    offsets, position = [], 0
    for _, tensor in bucket:
        position = -(-position // ALIGN) * ALIGN
        offsets.append(position)
        position += tensor.numel() * tensor.element_size()
    return Layout(
        names=tuple(name for name, _ in bucket),
        dtypes=tuple(str(t.dtype).removeprefix("torch.") for _, t in bucket),
        shapes=tuple(tuple(t.shape) for _, t in bucket),
        offsets=tuple(offsets),
        nbytes=position,
    )


def _slot(flat: torch.Tensor, layout: Layout, index: int) -> torch.Tensor:
    dtype = getattr(torch, layout.dtypes[index])
    shape = layout.shapes[index]
    start = layout.offsets[index]
    end = start + math.prod(shape) * dtype.itemsize
    return flat[start:end].view(dtype).view(shape)


def pack(bucket: NamedTensors, layout: Layout, device: torch.device) -> torch.Tensor:
    """One uint8 buffer on ``device`` holding every tensor of ``bucket`` at its offset."""
    flat = torch.empty(max(layout.nbytes, 1), dtype=torch.uint8, device=device)
    for index, (_, tensor) in enumerate(bucket):
        _slot(flat, layout, index).copy_(tensor)
    return flat


def unpack(flat: torch.Tensor, layout: Layout) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) views into ``flat`` (no copies); inverse of :func:`pack`."""
    return [(name, _slot(flat, layout, i)) for i, name in enumerate(layout.names)]


@dataclass(frozen=True)
class StreamStats:
    """What one update moved."""

    num_tensors: int = 0
    num_bytes: int = 0
    num_buckets: int = 0


class _NcclGroup:
    """vLLM's ``PyNcclCommunicator`` on a stateless group (the learner's own torch.distributed
    group is untouched); tensors live on ``device``."""

    def __init__(self, host: str, port: int, rank: int, world_size: int, timeout_s: float,
                 device: torch.device | None) -> None:  # fmt: skip
        if not torch.cuda.is_available():
            raise RuntimeError(
                "weight-sync transport 'nccl' needs a CUDA GPU in this process; use "
                "rollout.weight_transfer: gloo (or local) on machines without one"
            )
        from vllm.distributed.weight_transfer.nccl_common import stateless_init_process_group

        if is_loopback(host):  # NCCL's bootstrap sockets then stay on loopback too
            os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
        self.device = device or torch.device("cuda", torch.cuda.current_device())
        # vLLM's stateless group binds its store's listening socket to ``host``.
        self._comm = stateless_init_process_group(host, port, rank, world_size, self.device)

    def broadcast(self, tensor: torch.Tensor) -> None:
        self._comm.broadcast(tensor, src=0, stream=torch.cuda.current_stream(self.device))

    def synchronize(self) -> None:
        torch.cuda.current_stream(self.device).synchronize()

    def close(self) -> None:
        self._comm.destroy()


class _GlooGroup:
    """A gloo group over TCP on CPU tensors (``device`` is ignored)."""

    def __init__(self, host: str, port: int, rank: int, world_size: int, timeout_s: float,
                 device: torch.device | None) -> None:  # fmt: skip
        self.device = torch.device("cpu")
        self._comm = _gloo_group(host, port, rank, world_size, timedelta(seconds=timeout_s))

    def broadcast(self, tensor: torch.Tensor) -> None:
        from torch.distributed import BroadcastOptions

        options = BroadcastOptions()
        options.rootRank = 0
        self._comm.broadcast([tensor], options).wait()

    def synchronize(self) -> None:
        pass  # gloo's wait() already returned after the data arrived

    def close(self) -> None:
        pass


GROUPS = {"nccl": _NcclGroup, "gloo": _GlooGroup}
TRANSPORTS = tuple(GROUPS)


class Channel:
    """One member of the broadcast group. Rank 0 hosts the rendezvous at ``host:port``;
    constructing blocks until all ``world_size`` members have joined (or ``timeout_s``).
    ``transport`` picks the group once (``GROUPS``); ``device`` is where nccl's tensors live."""

    def __init__(
        self,
        transport: str,
        host: str,
        port: int,
        rank: int,
        world_size: int,
        timeout_s: float = 600.0,
        device: torch.device | None = None,
    ) -> None:
        if transport not in GROUPS:
            raise ValueError(f"weight-sync transport {transport!r}: use one of {TRANSPORTS}")
        if world_size < 2 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world size {world_size}: need 0 <= rank < size >= 2")
        self.transport = transport
        self._group = GROUPS[transport](host, port, rank, world_size, timeout_s, device)
        self.device = self._group.device

    def broadcast(self, tensor: torch.Tensor) -> None:
        """Rank 0's ``tensor`` into everyone's ``tensor`` (same shape and dtype on all)."""
        self._group.broadcast(tensor)

    def synchronize(self) -> None:
        """Wait until every broadcast issued so far has completed on this rank."""
        self._group.synchronize()

    def close(self) -> None:
        self._group.close()
        self._group = None


def _gloo_group(host: str, port: int, rank: int, world_size: int, timeout: timedelta):
    """A gloo group of its own (not torch.distributed's default group, which a DeepSpeed
    learner or vLLM may hold). Built directly rather than with vLLM's stateless helper: that
    one silences fd 1 while it works, and two members starting at once in one process (the
    tests, the rollout bench) then leave stdout pointing at /dev/null for good."""
    from torch.distributed import PrefixStore, ProcessGroupGloo

    store = bound_store(host, port, world_size, rank == 0, timeout)
    return ProcessGroupGloo(PrefixStore("sailrl-weights", store), rank, world_size, timeout)


def _header(channel: Channel, kind: int, layout_len: int = 0, data_len: int = 0) -> None:
    channel.broadcast(torch.tensor([kind, layout_len, data_len], device=channel.device))


def send_stream(channel: Channel, buckets: Iterable[NamedTensors]) -> StreamStats:
    """Rank 0: broadcast every bucket, then END. If producing a bucket fails, the receivers
    get ABORT (so they do not wait forever) and the error is re-raised here."""
    tensors = nbytes = count = 0
    try:
        for bucket in buckets:
            layout = layout_of(bucket)
            raw = torch.frombuffer(bytearray(layout.to_bytes()), dtype=torch.uint8)
            data = pack(bucket, layout, channel.device)
            _header(channel, BUCKET, raw.numel(), data.numel())
            channel.broadcast(raw.to(channel.device))
            channel.broadcast(data)
            tensors, nbytes, count = tensors + len(bucket), nbytes + layout.nbytes, count + 1
    except BaseException:
        try:
            _header(channel, ABORT)
            channel.synchronize()
        except Exception:  # noqa: BLE001 - channel broken: the original error says more
            pass
        raise
    _header(channel, END)
    channel.synchronize()
    return StreamStats(tensors, nbytes, count)


class SenderAborted(RuntimeError):
    """The sender failed while producing the update (its own error says why)."""


def receive_stream(
    channel: Channel, load: Callable[[list[tuple[str, torch.Tensor]]], None]
) -> StreamStats:
    """Ranks > 0: receive buckets until END, calling ``load`` on each (as views into that
    bucket's receive buffer). If ``load`` raises, the rest of the
    stream is still drained so that the sender finishes, then the first error is raised."""
    tensors = nbytes = count = 0
    failure: BaseException | None = None
    while True:
        header = torch.empty(3, dtype=torch.int64, device=channel.device)
        channel.broadcast(header)
        kind, layout_len, data_len = (int(v) for v in header.tolist())
        if kind == END:
            break
        if kind == ABORT:
            raise SenderAborted(
                f"the learner aborted the weight update after {count} buckets; see its error"
            )
        if kind != BUCKET:
            raise RuntimeError(f"weight-sync stream is corrupt: header kind {kind}")
        raw = torch.empty(layout_len, dtype=torch.uint8, device=channel.device)
        channel.broadcast(raw)
        layout = Layout.from_bytes(raw.cpu().numpy().tobytes())
        data = torch.empty(data_len, dtype=torch.uint8, device=channel.device)
        channel.broadcast(data)
        if failure is None:
            try:
                load(unpack(data, layout))
            except Exception as err:  # noqa: BLE001 - raised after draining the stream
                failure = err
        tensors, nbytes, count = tensors + len(layout.names), nbytes + layout.nbytes, count + 1
    if failure is not None:
        raise failure
    return StreamStats(tensors, nbytes, count)
