"""After every weight sync: does the rollout engine still compute what the learner does?

A fixed probe prompt is decoded greedily by the engine; the learner recomputes the logprobs
of the same tokens. A gap beyond the tolerance means the importance ratios are wrong (a
broken sync, a name-map bug, a stale cache), so it is logged every step and can abort.
"""

from __future__ import annotations

import logging

from policy.batch import Sequence
from rollout.types import SamplingSettings

log = logging.getLogger(__name__)

PROBE_TOKENS = 16


def parity_probe(cluster, builder, probe, loop) -> dict[str, float]:
    sampling = SamplingSettings(n=1, temperature=0.0, max_tokens=PROBE_TOKENS, seed=0)
    result = cluster.generate([builder.request(probe)], sampling)
    if not result.completions:
        return {}
    comp = result.completions[0]
    p, r = len(comp.prompt_token_ids), len(comp.token_ids)
    seq = Sequence(
        input_ids=[*comp.prompt_token_ids, *comp.token_ids],
        loss_mask=[0] * p + [1] * r,
        pixel_values=probe.pixel_values,
    )
    learner = cluster.logprobs([seq])[0][p:]
    diffs = [abs(float(a) - b) for a, b in zip(learner.tolist(), comp.logprobs)]
    worst = max(diffs) if diffs else 0.0
    metrics = {
        "parity/max_abs_diff": worst,
        "parity/mean_abs_diff": sum(diffs) / max(1, len(diffs)),
        "parity/version": float(comp.weight_version),
    }
    if worst > loop.parity_tolerance:
        message = (
            f"weight-sync parity probe: engine and learner logprobs differ by {worst:.2e} "
            f"(tolerance {loop.parity_tolerance:g}) at weight version {comp.weight_version}"
        )
        if loop.fail_on_parity:
            raise RuntimeError(message)
        log.warning(message)
    return metrics
