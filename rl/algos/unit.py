"""What an algorithm unit is: the protocols every policy loss and advantage estimator meets.

A unit is a frozen dataclass whose first field is ``name: Literal["its-name"]`` (the tag of
the config's tagged union: ``rl.config`` picks the variant by it, so an option exists only
on the variant that declares it) and whose other fields are its options, checked in
``__post_init__`` with errors that name the option. It declares the inputs it needs.
Register it with one line in ``rl.algos.registry``.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Protocol

import torch

from policy.metrics import Metric

__all__ = ["AdvantageUnit", "LossTerms", "LossUnit"]


class LossTerms(NamedTuple):
    """A loss unit's output for one micro-batch."""

    token_loss: torch.Tensor  # (B, T) per-token loss to minimise (before TIS and aggregation)
    log_ratio: torch.Tensor  # (B, T) detached log(pi / pi_old) the unit used, for metrics
    metrics: dict[str, Metric]  # the unit's own metrics (clip fractions, gate means, ...)


class LossUnit(Protocol):
    """A policy loss. ``needs`` lists inputs beyond (logprobs, advantages, mask), from
    ``policy.loss_inputs``: "old_logprobs", "ref_logprobs", "rollout_logprobs"."""

    name: str
    agg_mode: str
    needs: ClassVar[frozenset[str]]

    def token_loss(
        self,
        logprobs: torch.Tensor,
        old_logprobs: torch.Tensor | None,
        advantages: torch.Tensor,
        mask: torch.Tensor,
    ) -> LossTerms: ...


class AdvantageUnit(Protocol):
    """An advantage estimator: one advantage per sample from flat rewards, groups of
    ``group_size`` contiguous. ``needs`` is empty for outcome-reward estimators."""

    name: str
    needs: ClassVar[frozenset[str]]

    def compute(self, rewards: torch.Tensor, group_size: int) -> torch.Tensor: ...
