"""Configuration of the rewards section (plain dataclasses; ``rl.config.from_dict`` fills them
from YAML). Every check raises ValueError naming the field to change.

    >>> cfg = RewardsConfig(sets={"default": RewardSetConfig(weights={"answer": 0.5})})
    Traceback (most recent call last):
    ...
    ValueError: sets.default.weights: linear weights must sum to 1, got 0.5 (answer=0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from rewards.format_reward import IMAGE_TOKENS

BUILTIN_REWARDS = ("answer", "format", "think_quality")
DEFAULT_BANNED_TOKENS = list(IMAGE_TOKENS)


@dataclass
class RuntimeConfig:
    """How a batch is scored: worker processes, hard per-sample timeout, error threshold."""

    isolation: bool = True  # score in killable worker processes (off: in this process)
    workers: int = 2
    timeout_s: float = 5.0  # per sample; the worker is killed and replaced after it
    startup_timeout_s: float = 120.0  # a fresh worker must be ready within this
    chunk_size: int = 32  # samples sent to a worker at once (cuts IPC cost per sample)
    start_method: Literal["forkserver", "spawn"] = "forkserver"  # never fork (Ray, threads)
    max_error_rate: float = 0.1  # a batch with more errors + timeouts than this aborts
    max_completion_chars: int = 65536  # longer completions score 0 without being parsed

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"runtime.workers: must be at least 1, got {self.workers}")
        if not self.timeout_s > 0:
            raise ValueError(f"runtime.timeout_s: must be positive, got {self.timeout_s}")
        if not self.startup_timeout_s > 0:
            raise ValueError(
                f"runtime.startup_timeout_s: must be positive, got {self.startup_timeout_s}"
            )
        if self.chunk_size < 1:
            raise ValueError(f"runtime.chunk_size: must be at least 1, got {self.chunk_size}")
        if not 0.0 <= self.max_error_rate <= 1.0:
            raise ValueError(
                f"runtime.max_error_rate: must be in [0, 1], got {self.max_error_rate}"
            )
        if self.max_completion_chars < 1:
            raise ValueError(
                f"runtime.max_completion_chars: must be positive, got {self.max_completion_chars}"
            )


@dataclass
class JudgeConfig:
    """The think-quality judge: an OpenAI-compatible chat endpoint (a vLLM server, ...)."""

    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1 ; empty means the judge is off
    model: str = ""
    api_key_env: str = ""  # name of the environment variable holding the key, if any
    timeout_s: float = 30.0  # per request
    retries: int = 2  # extra attempts after a failed or unparsable reply
    max_tokens: int = 16
    max_thought_chars: int = 12000  # the thought is cut to its last this-many characters
    direct_mode_score: float = 1.0  # a direct answer has no thought to judge

    def __post_init__(self) -> None:
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"judge.base_url: must start with http:// or https://, got {self.base_url!r}"
            )
        if self.base_url and not self.model:
            raise ValueError("judge.model: set the served model name the judge endpoint expects")
        if not self.timeout_s > 0:
            raise ValueError(f"judge.timeout_s: must be positive, got {self.timeout_s}")
        if self.retries < 0:
            raise ValueError(f"judge.retries: must be 0 or more, got {self.retries}")
        if not 0.0 <= self.direct_mode_score <= 1.0:
            raise ValueError(
                f"judge.direct_mode_score: must be in [0, 1], got {self.direct_mode_score}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


@dataclass
class RewardSetConfig:
    """One way to combine rewards.

    ``linear``: sum of weight * reward over ``weights`` (weights sum to 1).
    ``gated``: alpha * product(rewards in ``gate``) + (1 - alpha) * ``format`` reward.
    """

    combine: Literal["linear", "gated"] = "linear"
    weights: dict[str, float] = field(default_factory=lambda: {"answer": 0.9, "format": 0.1})
    alpha: float = 0.9
    gate: list[str] = field(default_factory=lambda: ["answer", "think_quality"])
    format: str = "format"

    def check(self, where: str) -> None:
        if self.combine == "linear":
            if not self.weights:
                raise ValueError(f"{where}.weights: name at least one reward")
            negative = [k for k, w in self.weights.items() if w < 0]
            if negative:
                raise ValueError(f"{where}.weights: weight of {negative[0]!r} is negative")
            total = sum(self.weights.values())
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                listed = ", ".join(f"{k}={w:g}" for k, w in self.weights.items())
                raise ValueError(
                    f"{where}.weights: linear weights must sum to 1, got {total:g} ({listed})"
                )
        else:
            if not 0.0 <= self.alpha <= 1.0:
                raise ValueError(f"{where}.alpha: must be in [0, 1], got {self.alpha}")
            if not self.gate:
                raise ValueError(
                    f"{where}.gate: name the rewards to multiply, e.g. [answer, think_quality]"
                )

    def reward_names(self) -> list[str]:
        """Every reward this set needs, in a stable order."""
        names = list(self.weights) if self.combine == "linear" else [*self.gate, self.format]
        return list(dict.fromkeys(names))


@dataclass
class RoutingConfig:
    """Which reward set scores a sample: ``routes[metadata[key]]``, else ``default``."""

    key: str = "data_source"
    routes: dict[str, str] = field(default_factory=dict)
    default: str = "default"


@dataclass
class RewardsConfig:
    """The whole rewards section."""

    sets: dict[str, RewardSetConfig] = field(default_factory=lambda: {"default": RewardSetConfig()})
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    custom: dict[str, str] = field(default_factory=dict)  # name -> "package.module:function"
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    banned_tokens: list[str] = field(default_factory=lambda: list(DEFAULT_BANNED_TOKENS))
    # The reward whose value is held-out accuracy (RL's in-loop eval, ``sailrl eval``): a
    # built-in, a ``custom`` name, a registered name or an entry point. A partial-credit
    # scorer gives fractional accuracy; "not applicable" samples are left out of the mean.
    eval_reward: str = "answer"

    def __post_init__(self) -> None:
        if self.eval_reward == "format" or not self.eval_reward:
            raise ValueError(
                f"eval_reward: {self.eval_reward!r} cannot score correctness (the format rate "
                "is reported anyway); name the answer-checking reward, e.g. answer"
            )
        if not self.sets:
            raise ValueError("sets: define at least one reward set")
        for name, reward_set in self.sets.items():
            reward_set.check(f"sets.{name}")
        for value, target in self.routing.routes.items():
            if target not in self.sets:
                raise ValueError(
                    f"routing.routes.{value}: unknown reward set {target!r}; defined: {', '.join(self.sets)}"
                )
        if self.routing.default not in self.sets:
            raise ValueError(
                f"routing.default: unknown reward set {self.routing.default!r}; defined: {', '.join(self.sets)}"
            )
        for name, path in self.custom.items():
            if name in BUILTIN_REWARDS:
                raise ValueError(f"custom.{name}: {name!r} is a built-in reward; pick another name")
            if "." not in path and ":" not in path:
                raise ValueError(f"custom.{name}: expected 'package.module:function', got {path!r}")
        if "think_quality" in self.reward_names():
            if not self.judge.enabled:
                raise ValueError(
                    "judge.base_url: the think_quality reward is used but no judge is configured; "
                    "set judge.base_url and judge.model, or drop think_quality from the sets"
                )
            budget = self.judge.timeout_s * (self.judge.retries + 1)
            if self.runtime.isolation and self.runtime.timeout_s < budget:
                raise ValueError(
                    f"runtime.timeout_s: {self.runtime.timeout_s:g} s is shorter than the judge's "
                    f"worst case ({budget:g} s = judge.timeout_s x (judge.retries + 1)); raise it"
                )

    def reward_names(self) -> list[str]:
        """Every reward some set needs."""
        names: list[str] = []
        for reward_set in self.sets.values():
            names.extend(reward_set.reward_names())
        return list(dict.fromkeys(names))
