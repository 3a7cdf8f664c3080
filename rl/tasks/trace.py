"""A process reward for the synthetic tasks: how much of the reference reasoning a completion
writes. Every demo row carries its step-by-step ``thought`` (``rl.tasks.dataset``), so the
steps are as verifiable as the answer.

An answer-only reward lets a small model reach the right answer while its thinking drifts
away from the problem (docs/recipes.md, "The demo"); adding this reward pays for each step
written as the reference writes it.

    >>> meta = {"thought": "max 3 5 = 5. max 5 2 = 5."}
    >>> step_match("<think>\\nmax 3 5 = 5. max 5 2 = 5.\\n</think>\\n\\n5", "5", meta)
    1.0
    >>> step_match("<think>\\nmax 3 5 = 3. max 5 2 = 5.\\n</think>\\n\\n5", "5", meta)
    0.5
    >>> step_match("no thinking at all", "5", meta)
    0.0
    >>> step_match("<think>max 3 5 = 5. max 5 2 = 5.</think>5", "5", {**meta, "mode": "direct"})
    0.0
"""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def steps(text: str) -> list[str]:
    """The sentences of a thought, whitespace-normalised: ``"a = 1. b = 2."`` -> 2 steps."""
    return [s.strip() for s in re.split(r"(?<=\.)\s+", " ".join(text.split())) if s.strip()]


def step_match(completion: str, answer: str, metadata: dict) -> float:
    """Share of the reference thought's steps (``metadata["thought"]``) that the completion's
    think block writes at the same position; 0.0 without a think block or a reference, and
    for a prompt asked in direct mode (thinking there must not pay)."""
    if metadata.get("mode") == "direct":
        return 0.0
    reference = steps(metadata.get("thought") or "")
    found = _THINK.search(completion)
    if not reference or found is None:
        return 0.0
    written = steps(found.group(1))
    same = sum(a == b for a, b in zip(written, reference))
    # extra steps beyond the reference count against it, so rambling does not pay
    return same / max(len(reference), len(written))
