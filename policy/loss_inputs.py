"""What a loss function may ask the learner for, and the small pieces the learner uses to
provide it inside ``train_step``.

A loss function declares ``loss_fn.needs``, a set of names from ``COMPUTED`` (the learner
computes them on its own shard) and ``CARRIED`` (they must come in ``Sequence.extras``):

- ``old_logprobs``: logprobs of the weights at the start of the call (before any update);
- ``ref_logprobs``: logprobs of the frozen reference (the starting weights;
  ``LearnerConfig.reference``);
- ``rollout_logprobs``: the sampling engine's logprobs, carried by the caller.

A loss function without ``needs`` (the SFT loss) gets none of them.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Any

import torch
from torch import nn

COMPUTED = ("old_logprobs", "ref_logprobs")
CARRIED = ("rollout_logprobs",)

__all__ = ["CARRIED", "COMPUTED", "has_dropout", "loss_needs", "pad_rows"]


def loss_needs(loss_fn: Any) -> frozenset[str]:
    """The inputs ``loss_fn`` declares (``needs``), checked against what exists."""
    needs = frozenset(getattr(loss_fn, "needs", ()))
    unknown = sorted(needs - set(COMPUTED) - set(CARRIED))
    if unknown:
        raise ValueError(
            f"loss function asks for {unknown}; a learner provides {list(COMPUTED)} and "
            f"passes on {list(CARRIED)} from Sequence.extras"
        )
    return needs


def has_dropout(model: nn.Module) -> bool:
    """Whether a training-mode forward is random: a Dropout module with p > 0, or a positive
    ``*dropout*`` setting in the model's config (attention dropout is functional in HF)."""
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return True
    config = getattr(model, "config", None)
    configs = [config] + [getattr(config, k, None) for k in ("llm_config", "vision_config")]
    for cfg in configs:
        if cfg is None:
            continue
        for key, value in vars(cfg).items():
            if "dropout" in key and isinstance(value, int | float) and value > 0:
                return True
    return False


def pad_rows(values: SequenceABC[torch.Tensor], indices: list[int], width: int) -> torch.Tensor:
    """(len(indices), width) float32 of ``values[i]`` right-padded with 0, rows in order.

    >>> pad_rows([torch.tensor([0.0, -1.0]), torch.tensor([0.0, -2.0, -3.0])], [1, 0], 3)
    tensor([[ 0., -2., -3.],
            [ 0., -1.,  0.]])
    """
    out = torch.zeros(len(indices), width, dtype=torch.float32)
    for row, i in enumerate(indices):
        out[row, : values[i].numel()] = values[i].float()
    return out
