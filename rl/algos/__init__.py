"""RL algorithm math as pure torch: advantage estimators and policy losses as registered
units (``rl.algos.registry``), KL, TIS, aggregation and the DAPO sampling rules.

The learner (``policy/``, which cannot import ``rl``) receives ``rl.algos.rl_loss.RLLoss`` from the
driver as a plain callable; everything here is tested on CPU without Ray, vLLM or DeepSpeed.
See ``docs/algorithms.md`` for the formulas and how to add a loss.
"""

from rl.algos.advantages import DrGrpo, Grpo, group_advantages, token_advantages
from rl.algos.aggregation import aggregate, masked_mean, token_and_seq_counts, token_metric
from rl.algos.cispo import Cispo
from rl.algos.config import AlgoConfig
from rl.algos.gspo import Gspo
from rl.algos.kl import kl_estimate, kl_reward_to_go
from rl.algos.losses import policy_loss
from rl.algos.ppo_clip import Dapo, Ppo
from rl.algos.ratios import clipped_surrogate, sequence_log_ratio, token_log_ratio
from rl.algos.registry import ADVANTAGES, LOSSES
from rl.algos.sampling import (
    BatchFiller,
    FillReport,
    informative_groups,
    mask_truncated,
    overlong_penalty,
)
from rl.algos.sapo import Sapo
from rl.algos.tis import rollout_mismatch, tis_weights

__all__ = [
    "ADVANTAGES",
    "LOSSES",
    "AlgoConfig",
    "BatchFiller",
    "Cispo",
    "Dapo",
    "DrGrpo",
    "FillReport",
    "Grpo",
    "Gspo",
    "Ppo",
    "Sapo",
    "aggregate",
    "clipped_surrogate",
    "group_advantages",
    "informative_groups",
    "kl_estimate",
    "kl_reward_to_go",
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
    "token_metric",
]
