"""The learner's achieved FLOP/s against the machine's: a plain torch matmul ceiling measured
on the same threads, and the dense training estimate of the work a step did.

Work of a training step: 6 x (parameters a token's matmuls touch) x (positions the model
ran: padded rows, a shared prompt once), forward + backward. Counted parameters: the
language model's, without the input embedding (a lookup, not a matmul) unless it is tied to
the LM head; MoE counts only the routed experts a token uses. Attention's score and value
products (about 12 x layers x context x attention width per position; ~5% here at a few
hundred tokens of context) are left out, so the ratio slightly understates the learner.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch


def matmul_ceiling(
    threads: int | None = None, m: int = 4096, k: int = 1024, n: int = 3072, seconds: float = 1.5
) -> dict[str, Any]:
    """Best FLOP/s of an fp32 (m, k) @ (k, n) matmul over ``seconds`` of repeats on
    ``threads`` torch threads (None: every core this process may use), the shape of a
    learner's MLP projection at these model sizes."""
    threads = threads or len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    torch._C.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
        out = torch.empty(m, n)
        torch.mm(a, b, out=out)  # warm-up
        best, end = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < end or best == float("inf"):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    finally:
        torch._C.set_num_threads(before)
    return {"flops_per_s": 2.0 * m * k * n / best, "threads": threads, "shape": [m, k, n]}


def matmul_params(summary: dict[str, Any], embedding: int, tied: bool) -> int:
    """Parameters a token's matmuls touch, from ``policy.params.parameter_summary``: the
    language model's (active for MoE: the routed experts a token uses, approximately as the
    summary counts them), less the input embedding's ``embedding`` unless tied."""
    llm = summary["by_part"]["language_model"]
    llm -= summary["total_params"] - summary["active_params"]  # unrouted experts
    return int(llm - (0 if tied else embedding))


def learner_flops(params: int, positions: float, seconds: float) -> float:
    """Achieved training FLOP/s: 6 x params x positions over ``seconds``."""
    return 6.0 * params * positions / seconds if seconds > 0 else 0.0
