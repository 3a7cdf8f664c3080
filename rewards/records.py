"""Records that cross the rewards boundary: one input sample, its result, batch statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["think", "direct"]
Outcome = Literal["ok", "timeout", "error", "no_answer"]
OUTCOMES: tuple[str, ...] = ("ok", "timeout", "error", "no_answer")
MODES: tuple[str, ...] = ("think", "direct")


@dataclass(frozen=True)
class RewardInput:
    """One completion to score.

    ``metadata`` is the prompt's metadata (data source, question text, ...); rewards read it,
    routing picks the reward set from it. ``mode`` says whether the prompt asked for thinking.
    ``prompt`` is the example's question as in the data (its ``prompt`` string, or its
    ``messages``); TRL-style rewards receive it as ``prompts`` (see docs/rewards.md).
    """

    completion: str
    answer: str
    mode: Mode = "think"
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt: str | tuple[dict[str, str], ...] = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not allowed; choose 'think' or 'direct'")
        if not isinstance(self.completion, str):
            raise ValueError(f"completion: expected a string, got {type(self.completion).__name__}")
        if not isinstance(self.answer, str):
            raise ValueError(f"answer: expected a string, got {type(self.answer).__name__}")


@dataclass(frozen=True)
class RewardResult:
    """The score of one sample: the combined reward, every component (for logging) and how
    scoring ended. ``error`` says what went wrong when outcome is ``timeout`` or ``error``."""

    reward: float
    components: dict[str, float]
    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True)
class RewardStats:
    """Counts per outcome, mean reward and throughput of one or more scored batches."""

    samples: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    reward_sum: float = 0.0
    seconds: float = 0.0
    worker_restarts: int = 0

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.samples if self.samples else 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def error_rate(self) -> float:
        return self.outcomes.get("error", 0) / self.samples if self.samples else 0.0

    def merged(self, other: RewardStats) -> RewardStats:
        outcomes = {k: self.outcomes.get(k, 0) + other.outcomes.get(k, 0) for k in OUTCOMES}
        return RewardStats(
            samples=self.samples + other.samples,
            outcomes=outcomes,
            reward_sum=self.reward_sum + other.reward_sum,
            seconds=self.seconds + other.seconds,
            worker_restarts=self.worker_restarts + other.worker_restarts,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for logs and the command-line summary."""
        return {
            "samples": self.samples,
            "outcomes": dict(self.outcomes),
            "mean_reward": round(self.mean_reward, 6),
            "seconds": round(self.seconds, 3),
            "samples_per_s": round(self.samples_per_s, 1),
            "worker_restarts": self.worker_restarts,
        }


def stats_of(results: list[RewardResult], seconds: float, restarts: int = 0) -> RewardStats:
    """Statistics of one scored batch."""
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        outcomes[r.outcome] += 1
    return RewardStats(
        samples=len(results),
        outcomes=outcomes,
        reward_sum=sum(r.reward for r in results),
        seconds=seconds,
        worker_restarts=restarts,
    )
