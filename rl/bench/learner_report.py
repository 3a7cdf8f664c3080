"""What ``sailrl bench rl`` adds per model beside the phase times: the learner's achieved
FLOP/s as a fraction of a torch matmul ceiling measured in the same run (``policy.flops``)
and the run's peak memory per process (``rl.bench.memory``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl.bench.memory import TreeMemory


def learner_report(row: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The learner's work and speed in one metrics row (its ``train/`` keys) against the
    matmul ceiling on every core of this machine (what the train phase gets, see
    ``ray.phase_threads``). The work is the update's forward + backward over the positions
    the model ran (``train/padded_tokens``; an old-logprob recompute, when one runs, is in
    the time but not in the work)."""
    from policy.checkpoint import load_config
    from policy.flops import learner_flops, matmul_ceiling, matmul_params
    from policy.params import parameter_summary

    config = load_config(model_dir)
    summary = parameter_summary(config)
    llm = config.llm_config
    params = matmul_params(summary, llm.vocab_size * llm.hidden_size, summary["tied_lm_head"])
    positions = float(row.get("train/padded_tokens", 0.0))
    seconds = float(row.get("train/time_s", 0.0))
    achieved = learner_flops(params, positions, seconds)
    ceiling = matmul_ceiling()
    return {
        "matmul_params": params,
        "tokens": row.get("train/tokens"),
        "positions_run": positions,
        "learner_step_s": round(seconds, 3),
        "flops_per_s": round(achieved / 1e9, 2) * 1e9,
        "matmul_ceiling_flops_per_s": round(ceiling["flops_per_s"] / 1e9, 2) * 1e9,
        "ceiling_threads": ceiling["threads"],
        "fraction_of_ceiling": round(achieved / ceiling["flops_per_s"], 3),
    }


def memory_report(memory: TreeMemory) -> dict[str, Any]:
    """Peak RSS and PSS summed over the run's processes, and the largest at each peak."""
    return {
        "peak_rss_mb": round(memory.peak_mb),
        "peak_processes_mb": memory.top(),
        "peak_pss_mb": round(memory.peak_pss_mb),
        "peak_pss_processes_mb": memory.top(pss=True),
    }
