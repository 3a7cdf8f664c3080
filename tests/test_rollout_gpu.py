"""The rollout engine's CUDA-only paths: sleep/wake for colocation, and weight sync over NCCL.

They skip without a CUDA GPU (and the NCCL test without two), so CI never runs them; on a
GPU machine with the ``cuda`` extra installed, ``pytest -m gpu tests/test_rollout_gpu.py``
checks them.
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


@pytest.fixture
def tiny(tmp_path):
    pytest.importorskip("vllm")
    from policy.checkpoint import init_checkpoint

    return init_checkpoint("tiny", tmp_path / "ckpt")


def _engine(path, **overrides):
    from rollout.config import RolloutConfig
    from rollout.engine import RolloutEngine

    settings = {"dtype": "float32", "max_model_len": 2048, "gpu_memory_utilization": 0.3}
    return RolloutEngine(RolloutConfig(model=str(path), **{**settings, **overrides}))


def _greedy(engine):
    from rollout.types import RolloutRequest, SamplingSettings

    requests = [RolloutRequest("q1", "What is 2+3?"), RolloutRequest("q2", "Name a colour.")]
    result = engine.generate(requests, SamplingSettings(temperature=0.0, max_tokens=24, seed=0))
    assert not result.failures, result.failures
    return [(c.token_ids, c.logprobs) for c in result.completions]


def test_sleep_releases_memory_and_wake_up_restores_outputs(tiny):
    engine = _engine(tiny, enable_sleep_mode=True)
    try:
        before = _greedy(engine)
        free_awake = torch.cuda.mem_get_info()[0]
        engine.sleep(level=1)
        assert torch.cuda.mem_get_info()[0] > free_awake  # KV cache and weights left the GPU
        with pytest.raises(RuntimeError, match="asleep"):
            _greedy(engine)
        engine.wake_up()
        assert _greedy(engine) == before
    finally:
        engine.shutdown()


def test_nccl_update_equals_the_same_update_in_process(tiny):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA GPUs: the engine on GPU 0, the sender on GPU 1")
    from policy.checkpoint import checkpoint_tensors, load_checkpoint
    from rl.cluster.topology import free_port
    from rollout.broadcast import Channel, send_stream
    from rollout.parity import perturb_, weight_buckets

    model = load_checkpoint(tiny).model
    perturbed = copy.deepcopy(model)
    perturb_(perturbed, scale=0.05, seed=3)
    named = list(checkpoint_tensors(perturbed))
    port = free_port()
    sent: list = []

    def sender() -> None:  # learner rank 0 on GPU 1
        device = torch.device("cuda", 1)
        torch.cuda.set_device(device)
        channel = Channel("nccl", "127.0.0.1", port, 0, 2, device=device)
        buckets = ([(n, t.to(device)) for n, t in b] for b in weight_buckets(named, 1 << 20))
        sent.append(send_stream(channel, buckets))
        channel.close()

    engine = _engine(tiny)
    try:
        original = _greedy(engine)
        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        engine.open_weight_channel("nccl", "127.0.0.1", port, rank_offset=1, world_size=2)
        stats = engine.receive_weights(1)
        thread.join(120)
        assert sent and stats.num_bytes == sent[0].num_bytes and stats.num_buckets > 1
        over_nccl = _greedy(engine)
        engine.update_weights(weight_buckets(named, 1 << 20), version=2)
        assert _greedy(engine) == over_nccl != original
    finally:
        engine.shutdown()
