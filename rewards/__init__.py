"""sailrl.rewards: pure scoring of completions. Imports nothing else of the project.

Library use::

    from rewards import RewardInput, RewardRuntime, RewardsConfig
    with RewardRuntime(RewardsConfig()) as runtime:
        results = runtime.score([RewardInput(completion, answer, mode="think")])

Heavy modules (sympy, math-verify) load only when a reward needs them.
"""

from rewards.config import (
    JudgeConfig,
    RewardsConfig,
    RewardSetConfig,
    RoutingConfig,
    RuntimeConfig,
)
from rewards.records import OUTCOMES, RewardInput, RewardResult, RewardStats
from rewards.registry import register
from rewards.runtime import ErrorRateExceeded, RewardRuntime, RewardRuntimeError

__all__ = [
    "OUTCOMES",
    "ErrorRateExceeded",
    "JudgeConfig",
    "RewardInput",
    "RewardResult",
    "RewardRuntime",
    "RewardRuntimeError",
    "RewardSetConfig",
    "RewardStats",
    "RewardsConfig",
    "RoutingConfig",
    "RuntimeConfig",
    "register",
]
