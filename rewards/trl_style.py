"""TRL-convention reward functions, used unchanged: ``fn(prompts, completions, **kwargs) ->
list[float | None]``, called once per batch with the dataset's columns as keyword lists.

What such a function receives from sailrl (one list entry per sample, in order):

- ``prompts``: each example's question as in the data (the ``prompt`` string, or the
  ``messages`` list for a conversation);
- ``completions``: the model's text (for a conversation ``[{"role": "assistant",
  "content": text}]``, as TRL passes conversational completions);
- ``answer``, ``mode``, ``data_source``, ``domain`` and every other column of the data
  (``None`` where a sample lacks it; a column the function names is always passed).

TRL's ``completion_ids``, ``trainer_state``, ``log_extra`` and ``log_metric`` are not passed.
A ``None`` in the returned list means "not applicable": the reward is left out of that
sample's combination, as TRL's ``nansum`` leaves it out.

    >>> def only_long(completions, **kwargs):
    ...     return [1.0 if len(c) > 3 else None for c in completions]
    >>> is_trl_reward(only_long), is_trl_reward(lambda completion, answer, metadata: 1.0)
    (True, False)
    >>> from rewards.records import RewardInput
    >>> call_batch("only_long", only_long, [RewardInput("long one", "1"), RewardInput("no", "1")])
    [1.0, None]
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from rewards.records import RewardInput

# Columns every sample has; metadata keys are added after these.
BASE_COLUMNS = ("answer", "mode")


def is_trl_reward(fn: Callable) -> bool:
    """Whether ``fn`` follows TRL's convention (a ``completions`` or ``prompts`` parameter)
    rather than sailrl's ``fn(completion, answer, metadata)``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: not TRL-style
        return False
    return "completions" in params or "prompts" in params


def _named_params(fn: Callable) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind in kinds and name not in ("prompts", "completions")
    ]


def columns(items: Sequence[RewardInput]) -> dict[str, list[Any]]:
    """The keyword lists a TRL reward gets besides prompts and completions."""
    cols: dict[str, list[Any]] = {
        "answer": [i.answer for i in items],
        "mode": [i.mode for i in items],
    }
    keys = dict.fromkeys(k for i in items for k in i.metadata if k not in (*BASE_COLUMNS, "prompt"))
    for key in keys:
        cols[key] = [i.metadata.get(key) for i in items]
    return cols


def call_batch(name: str, fn: Callable, items: Sequence[RewardInput]) -> list[float | None]:
    """One value (or None) per item from one call of ``fn``; ValueError/TypeError naming the
    reward when it returns the wrong count or a value that is not a finite number."""
    prompts = [list(i.prompt) if isinstance(i.prompt, tuple) else i.prompt for i in items]
    completions: list[Any] = [
        [{"role": "assistant", "content": i.completion}] if isinstance(i.prompt, tuple)
        else i.completion
        for i in items
    ]  # fmt: skip
    cols = columns(items)
    # A column this batch's rows all lack (rows of a JSONL file may differ) is still passed,
    # as None per sample, when the function names it: as for a TRL dataset's empty cells.
    for param in _named_params(fn):
        cols.setdefault(param, [None] * len(items))
    out = fn(prompts=prompts, completions=completions, **cols)
    out = list(out)
    if len(out) != len(items):
        raise ValueError(
            f"reward {name!r} returned {len(out)} values for {len(items)} completions "
            "(a TRL-style reward returns one value per completion)"
        )
    values: list[float | None] = []
    for value in out:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            values.append(None)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"reward {name!r} returned {type(value).__name__} in its list, "
                "expected float or None"
            )
        elif not math.isfinite(value):
            raise ValueError(f"reward {name!r} returned {value}, expected a finite float or None")
        else:
            values.append(float(value))
    return values
