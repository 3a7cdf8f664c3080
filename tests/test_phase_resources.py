"""Per-phase torch threads on a private Ray, the object store size and the CPU KV cache's
automatic size (issue 12: every phase on the whole machine, memory sized to the run)."""

from __future__ import annotations

import pytest
import torch

from rl.cluster.topology import object_store_bytes, phase_threads
from rl.cluster.workers import release_memory, use_threads
from rl.run.resources import RayConfig
from rollout.config import KV_CACHE_CAP_GIB, RolloutConfig, kv_cache_bytes


def test_synchronous_loop_gives_each_phase_every_core():
    cfg = RayConfig()
    assert phase_threads(cfg, 1, 1, overlap=False, cores=8) == (8, 8)
    # Several actors of one phase share the cores; ray.num_cpus caps them.
    assert phase_threads(cfg, 2, 4, overlap=False, cores=8) == (4, 2)
    assert phase_threads(RayConfig(num_cpus=4), 1, 1, overlap=False, cores=16) == (4, 4)
    assert phase_threads(cfg, 3, 1, overlap=False, cores=2) == (1, 2)


def test_overlap_splits_the_cores_by_requested_cpus():
    assert phase_threads(RayConfig(), 1, 1, overlap=True, cores=8) == (4, 4)
    split = RayConfig(learner_cpus=3, rollout_cpus=1)
    assert phase_threads(split, 1, 1, overlap=True, cores=8) == (6, 2)
    # Each side keeps at least one core, even when its share rounds to none.
    lopsided = RayConfig(learner_cpus=10, rollout_cpus=0.1)
    assert phase_threads(lopsided, 1, 1, overlap=True, cores=2) == (1, 1)
    assert phase_threads(RayConfig(), 1, 1, overlap=True, cores=1) == (1, 1)


def test_threads_stay_ray_s_off_a_private_cpu_ray():
    for cfg in (
        RayConfig(address="auto"),
        RayConfig(phase_threads=False),
        RayConfig(learner_gpus=1, rollout_gpus=1),
    ):
        assert phase_threads(cfg, 1, 1, overlap=False, cores=8) == (None, None)


def test_use_threads_bypasses_a_replaced_setter(monkeypatch):
    before = torch.get_num_threads()
    # vLLM's CPU worker replaces torch.set_num_threads with a no-op in its process.
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    try:
        use_threads(1)
        assert torch.get_num_threads() == 1
        use_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch._C.set_num_threads(before)


def test_object_store_is_sized_from_the_weights():
    mib, gib = 2**20, 2**30
    # Two copies of the weights plus 256 MiB, at most 30% of memory.
    assert object_store_bytes(RayConfig(), 400 * mib, 24 * gib) == 1056 * mib
    assert object_store_bytes(RayConfig(), 8 * gib, 24 * gib) == int(0.3 * 24 * gib)
    assert object_store_bytes(RayConfig(object_store_mib=300), 8 * gib, 24 * gib) == 300 * mib
    with pytest.raises(ValueError, match="ray.object_store_mib"):
        RayConfig(object_store_mib=10)


def test_kv_cache_is_sized_from_sequences_and_model_dims():
    # tiny preset: 2 layers, 1 KV head of 64, fp32 -> 1 KiB per token.
    assert kv_cache_bytes(64, 2048, 2, 1, 64, 4) == 64 * 2048 * 1024
    # ~106M preset at 2048 tokens needs 4 GiB: capped at KV_CACHE_CAP_GIB.
    assert kv_cache_bytes(64, 2048, 8, 8, 64, 4) == int(KV_CACHE_CAP_GIB * 2**30) < 2**32
    # Never less than one whole sequence, even above the cap.
    assert kv_cache_bytes(1, 4096, 8, 8, 64, 4, cap_gib=0.01) == 4096 * 8 * 2 * 8 * 64 * 4
    assert RolloutConfig(model="x").kv_cache_gib is None
    assert RolloutConfig(model="x", kv_cache_gib=0.25).kv_cache_gib == 0.25


def test_release_memory_returns_freed_heap_pages():
    psutil = pytest.importorskip("psutil")
    if not psutil.LINUX:
        pytest.skip("glibc's malloc_trim")
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    me = psutil.Process()
    # 64 KiB blocks (below mmap's threshold) land on the heap; with small ones kept between
    # them, freeing the big ones leaves holes that glibc keeps until it is asked to trim. A
    # trim threshold out of reach keeps free() itself from trimming the heap's top (where
    # the big blocks end up when earlier tests left holes for the small ones to fill).
    m_trim_threshold = -1
    libc.mallopt(m_trim_threshold, 1 << 30)
    big, small = [], []
    for _ in range(4096):  # 256 MiB
        block = libc.malloc(64 * 1024)
        ctypes.memset(block, 1, 64 * 1024)
        big.append(block)
        small.append(libc.malloc(64))
    for block in big:
        libc.free(block)
    before = me.memory_info().rss
    release_memory()
    after = me.memory_info().rss
    for block in small:
        libc.free(block)
    libc.mallopt(m_trim_threshold, 128 * 1024)  # glibc's default
    assert after < before - (128 << 20), (before, after)
