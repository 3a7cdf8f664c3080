"""User-style rewards for the reward tests (an importable module, as the runtime's worker
processes import rewards by path)."""

from __future__ import annotations

import os


def length_bonus(completion, answer, metadata):
    """A dict reward: ``score`` plus a logged extra."""
    return {"score": 1.0 if len(completion) < 200 else 0.0, "chars": float(len(completion))}


def crashing(completion, answer, metadata):
    """Raises when the completion asks for it, else 1.0."""
    if "CRASH" in completion:
        raise ZeroDivisionError("user reward bug")
    return 1.0


def dying(completion, answer, metadata):
    """Kills its own process (a segfaulting extension would look the same)."""
    if "DIE" in completion:
        os._exit(3)
    return 1.0


def spinning(completion, answer, metadata):
    """Loops forever when asked (pure Python, holds the GIL)."""
    while "SPIN" in completion:
        pass
    return 1.0


def wrong_type(completion, answer, metadata):
    return "1.0"


def not_finite(completion, answer, metadata):
    return float("nan")


def no_score_key(completion, answer, metadata):
    return {"value": 1.0}


def source_tag(completion, answer, metadata):
    """1.0 for metadata data_source 'ocr' (checks metadata reaches rewards)."""
    return float(
        metadata.get("data_source") == "ocr" and metadata.get("mode") in ("think", "direct")
    )


# -- TRL-convention rewards, written as TRL's documentation shows them -----------------------
def format_reward_func(completions, **kwargs):
    """Reward function that checks if the completion has a specific format."""
    import re

    pattern = r"^<think>.*?</think>.*$"
    matches = [re.match(pattern, content) for content in completions]
    return [1.0 if match else 0.0 for match in matches]


def accuracy_reward(prompts, completions, solution, **kwargs):
    """Multi-task: 1.0 when the solution column appears in the completion; None (not
    applicable) for samples without a solution."""
    return [None if s is None else float(str(s) in c) for c, s in zip(completions, solution)]


def batch_size_reward(prompts, completions, **kwargs):
    """The number of completions in the call (shows that calls are batched)."""
    return [float(len(completions))] * len(completions)


def hanging_batch(prompts, completions, **kwargs):
    """Hangs for a batch holding 'HANG'."""
    while any("HANG" in c for c in completions):
        pass
    return [1.0] * len(completions)


def short_list(prompts, completions, **kwargs):
    return [1.0]


def partial_credit(completion, answer, metadata):
    """Partial credit: the share of the reference's comma-separated items present in the
    boxed answer (a task with several parts)."""
    from rewards.extract import answer_region, last_boxed

    boxed = last_boxed(answer_region(completion)) or ""
    want = [a.strip() for a in answer.split(",")]
    got = {g.strip() for g in boxed.split(",")}
    return sum(w in got for w in want) / len(want)
