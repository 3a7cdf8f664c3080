"""The rewards of held-out evaluation, derived from the training rewards: the correctness
reward ``rewards.eval_reward`` plus ``format`` (see ``rl.loop.evaluation``). Used by the
preflight, the reward actors and the offline jobs."""

from __future__ import annotations

from rewards import RewardsConfig, RewardSetConfig
from rewards.registry import reward_paths


def eval_rewards(train: RewardsConfig) -> RewardsConfig:
    """The correctness reward (``train.eval_reward``) + format, with the training runtime's
    settings and custom rewards.

    >>> eval_rewards(RewardsConfig(eval_reward="partial", custom={"partial": "m:f"})).sets[
    ...     "default"].weights
    {'partial': 0.5, 'format': 0.5}
    """
    cfg = RewardsConfig(
        sets={"default": RewardSetConfig(weights={train.eval_reward: 0.5, "format": 0.5})},
        runtime=train.runtime,
        custom=dict(train.custom),
        banned_tokens=list(train.banned_tokens),
        eval_reward=train.eval_reward,
    )
    try:
        reward_paths(cfg)
    except ValueError as err:
        raise ValueError(f"rewards.eval_reward: {err}") from err
    return cfg
