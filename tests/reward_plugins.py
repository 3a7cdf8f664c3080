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
