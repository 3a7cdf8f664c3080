"""Data-preparation rules of the recipe, as pure functions over scored samples.

- Rejection sampling (CoT data for Think-Fusion SFT): per prompt keep the best correct and
  well-formed thinking traces.
- Difficulty filter (RL data): sample each prompt k times with the previous stage's model;
  drop prompts always solved; for reasoning domains also drop prompts never solved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    """One sampled completion of a prompt and its scores."""

    text: str
    reward: float
    correct: bool  # the answer reward said right
    well_formed: bool  # the format reward said well formed
    length: int  # tokens


def best_traces(samples: Sequence[Scored], keep: int = 1) -> list[Scored]:
    """The ``keep`` best correct, well-formed samples: highest reward, then shortest.

    >>> s = [Scored("a", 1.0, True, True, 30), Scored("b", 1.0, True, True, 20),
    ...      Scored("c", 1.0, True, False, 5), Scored("d", 0.0, False, True, 9)]
    >>> [x.text for x in best_traces(s, keep=2)]
    ['b', 'a']
    >>> best_traces([Scored("x", 0.0, False, True, 3)])
    []
    """
    good = [s for s in samples if s.correct and s.well_formed]
    good.sort(key=lambda s: (-s.reward, s.length))
    unique, seen = [], set()
    for s in good:  # identical traces teach nothing twice
        if s.text not in seen:
            seen.add(s.text)
            unique.append(s)
    return unique[:keep]


def pass_rate(samples: Sequence[Scored]) -> float:
    """Share of the k samples whose answer is correct (pass@k as a rate).

    >>> pass_rate([Scored("", 1, True, True, 1), Scored("", 0, False, True, 1)])
    0.5
    """
    return sum(s.correct for s in samples) / len(samples) if samples else 0.0


def keep_prompt(
    rate: float, domain: str | None, reasoning_domains: Sequence[str]
) -> tuple[bool, str]:
    """Whether the difficulty filter keeps a prompt, and why.

    >>> keep_prompt(1.0, "math", ["math"])
    (False, 'always_solved')
    >>> keep_prompt(0.0, "math", ["math"])
    (False, 'never_solved')
    >>> keep_prompt(0.0, "ocr", ["math"])
    (True, 'kept')
    >>> keep_prompt(0.5, "math", ["math"])
    (True, 'kept')
    """
    if rate >= 1.0:
        return False, "always_solved"
    if rate <= 0.0 and domain in reasoning_domains:
        return False, "never_solved"
    return True, "kept"
