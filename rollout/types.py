"""Records that cross the rollout boundary: what to generate, how, and what came back."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from policy.vocab import Mode

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class RolloutRequest:
    """One prompt: the user's question (or a list of {role, content} messages), images as
    paths or PIL images (in order of their ``<image>`` markers, or prepended when the text
    has none), and the answer mode ("think" appends the SAIL-VL2 thinking instruction).

    ``prompt_token_ids``: the prompt already rendered and tokenised by the caller (the RL
    driver's ``policy.processor`` pass, images expanded): the engine then uses these ids as
    they are instead of tokenising ``prompt`` again (it still checks them against the
    images' tile counts and the context length)."""

    prompt_id: str
    prompt: str | tuple[dict[str, Any], ...]
    images: tuple[str | os.PathLike | Any, ...] = ()
    mode: Mode = "think"
    prompt_token_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample. ``seed`` makes a batch reproducible: request i, sample j draws with
    seed ``seed + i * n + j``. ``stop_at_end_of_turn`` stops at ``<|im_end|>``."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop_at_end_of_turn: bool = True

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n={self.n}: need at least one sample per prompt")
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens={self.max_tokens} must be >= 1")


@dataclass(frozen=True)
class Completion:
    """One sampled response. ``logprobs[k]`` is the log-probability of ``token_ids[k]`` under
    the model's raw distribution (temperature 1, no top-p), i.e. what the learner recomputes.
    ``weight_version`` is the version of the weights that produced every token."""

    prompt_id: str
    sample_index: int
    prompt_token_ids: tuple[int, ...]
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    text: str
    finish_reason: FinishReason
    weight_version: int


@dataclass(frozen=True)
class PromptFailure:
    """A prompt that could not be generated (bad input); the message names prompt and file."""

    prompt_id: str
    message: str


@dataclass(frozen=True)
class GenerateResult:
    """Completions of the valid prompts (prompt order, then sample order) and the failures."""

    completions: tuple[Completion, ...]
    failures: tuple[PromptFailure, ...] = field(default=())
