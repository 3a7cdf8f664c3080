"""rollout.cpu_eager: vLLM's compiled sampler-rank helper replaced by its eager form (no C++
build in the first generate), with the same integer results."""

from __future__ import annotations

import torch

from rollout.cpu_eager import count_greater_than, skip_sampler_compile


def test_eager_rank_count_matches_vllms_helper_and_replaces_it():
    from vllm.v1.sample import sampler
    from vllm.v1.sample.ops.logprobs import batched_count_greater_than

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 300, generator=g).log_softmax(-1)
    values = x.gather(-1, torch.randint(0, 300, (5, 1), generator=g))
    # vLLM's function before torch.compile wrapped it: the expression it compiles
    original = getattr(batched_count_greater_than, "_torchdynamo_orig_callable", None)
    original = original or batched_count_greater_than.__wrapped__
    expected = original(x, values)
    assert torch.equal(count_greater_than(x, values), expected)
    assert torch.equal(expected, torch.tensor([int((row >= v).sum()) for row, v in zip(x, values)]))
    skip_sampler_compile()
    assert sampler.batched_count_greater_than is count_greater_than
