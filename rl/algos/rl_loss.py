"""The RL loss the learner runs: ``policy/`` cannot import ``rl``, so the driver hands the
learner this small picklable callable (it crosses into Ray learner actors as is)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from policy.metrics import Metric
from rl.algos import AlgoConfig, policy_loss


@dataclass(frozen=True)
class RLLoss:
    """``loss_fn(mb) -> (loss, metrics)`` for ``policy.learner.Learner.train_step``.

    ``needs`` tells the learner what to provide (``policy.loss_inputs``): old logprobs and,
    with KL on, reference logprobs, both computed by the learner on its own shard inside the
    train call; ``rollout_logprobs`` come in the sequences' extras and ``advantages`` one per
    sequence (``Sequence.scalars``), broadcast over the tokens inside ``policy_loss``.
    """

    cfg: AlgoConfig

    @property
    def needs(self) -> frozenset[str]:
        return self.cfg.needs

    def __call__(self, mb) -> tuple[torch.Tensor, dict[str, Metric]]:
        extras = mb.extras
        return policy_loss(
            mb.logprobs,
            extras.get("old_logprobs"),
            extras["advantages"],
            mb.loss_mask,
            self.cfg,
            rollout_logprobs=extras.get("rollout_logprobs"),
            ref_logprobs=extras.get("ref_logprobs"),
            global_token_count=mb.global_token_count,
            global_seq_count=mb.global_sequence_count,
        )
