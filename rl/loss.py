"""The RL loss the learner runs: ``policy/`` cannot import ``rl``, so the driver hands the
learner this small picklable callable (it crosses into Ray learner actors as is)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl.algos import AlgoConfig, policy_loss


@dataclass(frozen=True)
class RLLoss:
    """``loss_fn(mb) -> (loss, metrics)`` for ``policy.learner.Learner.train_step``.

    Reads the per-token extras the driver put on each sequence: ``advantages``,
    ``old_logprobs`` (learner recompute before the update), ``rollout_logprobs`` (sampling
    engine, for TIS) and ``ref_logprobs`` when a KL term is on.
    """

    cfg: AlgoConfig

    def __call__(self, mb) -> tuple[torch.Tensor, dict[str, float]]:
        extras = mb.extras
        return policy_loss(
            mb.logprobs,
            extras["old_logprobs"],
            extras["advantages"],
            mb.loss_mask,
            self.cfg,
            rollout_logprobs=extras.get("rollout_logprobs"),
            ref_logprobs=extras.get("ref_logprobs"),
            global_token_count=mb.global_token_count,
            global_seq_count=mb.global_sequence_count,
            entropy=mb.entropy,
        )
