"""RL algorithm math as pure torch functions: advantages, policy losses, KL, TIS, sampling.

The learner (``policy/``, which cannot import ``rl``) receives ``policy_loss`` from the driver
as a plain callable; everything here is tested on CPU without Ray, vLLM or DeepSpeed.
See ``docs/algorithms.md`` for the formulas.
"""

from rl.algos.advantages import group_advantages, token_advantages
from rl.algos.aggregation import aggregate, masked_mean, token_and_seq_counts
from rl.algos.config import AlgoConfig
from rl.algos.entropy import entropy_from_logits
from rl.algos.kl import kl_estimate
from rl.algos.losses import clipped_surrogate, policy_loss, sequence_log_ratio, token_log_ratio
from rl.algos.sampling import (
    BatchFiller,
    FillReport,
    informative_groups,
    mask_truncated,
    overlong_penalty,
)
from rl.algos.tis import rollout_mismatch, tis_weights

__all__ = [
    "AlgoConfig",
    "BatchFiller",
    "FillReport",
    "aggregate",
    "clipped_surrogate",
    "entropy_from_logits",
    "group_advantages",
    "informative_groups",
    "kl_estimate",
    "mask_truncated",
    "masked_mean",
    "overlong_penalty",
    "policy_loss",
    "rollout_mismatch",
    "sequence_log_ratio",
    "tis_weights",
    "token_advantages",
    "token_and_seq_counts",
    "token_log_ratio",
]
