"""Metrics that carry their reduction, and the one place that reduces them.

A loss function reports, for one micro-batch, ``{name: Metric}``: the value over what this
call saw plus how values of several calls combine. The learner folds the micro-batches of a
mini-batch and then the ranks into one number per name (``MetricSums``), exactly as if the
loss had seen the whole mini-batch at once:

- ``token_mean``: a mean over loss tokens, weighted by the call's token count;
- ``seq_mean``: a mean over sequences (with at least one loss token), weighted by their count;
- ``sum``: added up (loss shares normalised by global counts, token counts);
- ``min`` / ``max``: the extreme over every call that saw at least one token.

A call with weight 0 (no loss token) contributes nothing, so an empty micro-batch cannot
drag a mean or fake a minimum.

    >>> sums = MetricSums()
    >>> sums.add({"r": Metric.token_mean(2.0, 3), "lo": Metric.min(0.5, 3)})
    >>> sums.add({"r": Metric.token_mean(4.0, 1), "lo": Metric.min(0.9, 1)})
    >>> sums.result()
    {'lo': 0.5, 'r': 2.5}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Reduction = Literal["token_mean", "seq_mean", "sum", "min", "max"]
REDUCTIONS: tuple[str, ...] = ("token_mean", "seq_mean", "sum", "min", "max")
_MEANS = ("token_mean", "seq_mean")

__all__ = ["REDUCTIONS", "Metric", "MetricSums", "Reduction", "as_metric", "over_mini_batches"]


@dataclass(frozen=True)
class Metric:
    """One metric of one call: ``value`` and how to combine it (``reduce``, ``weight``)."""

    value: float
    reduce: Reduction
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"Metric.reduce: {self.reduce!r}; choose one of {REDUCTIONS}")
        if self.weight < 0:
            raise ValueError(f"Metric.weight must be >= 0, got {self.weight}")

    @classmethod
    def token_mean(cls, value: float, tokens: float) -> Metric:
        return cls(float(value), "token_mean", float(tokens))

    @classmethod
    def seq_mean(cls, value: float, sequences: float) -> Metric:
        return cls(float(value), "seq_mean", float(sequences))

    @classmethod
    def sum(cls, value: float) -> Metric:
        return cls(float(value), "sum")

    @classmethod
    def min(cls, value: float, tokens: float) -> Metric:
        return cls(float(value), "min", float(tokens))

    @classmethod
    def max(cls, value: float, tokens: float) -> Metric:
        return cls(float(value), "max", float(tokens))


def as_metric(value: Metric | float) -> Metric:
    """A plain number from a loss function is a ``sum`` (the learner's older contract)."""
    return value if isinstance(value, Metric) else Metric.sum(float(value))


class MetricSums:
    """Running reduction of ``{name: Metric}`` dicts (micro-batches, then ranks)."""

    def __init__(self) -> None:
        # name -> (reduction, accumulated value, accumulated weight)
        self.state: dict[str, tuple[str, float, float]] = {}

    def add(self, metrics: Mapping[str, Metric | float]) -> None:
        for name, raw in metrics.items():
            m = as_metric(raw)
            kind, acc, weight = self.state.get(name, (m.reduce, _identity(m.reduce), 0.0))
            if kind != m.reduce:
                raise ValueError(f"metric {name!r} reported as {kind} and as {m.reduce}")
            if m.reduce in _MEANS:
                acc += m.value * m.weight
            elif m.reduce == "sum":
                acc += m.value
            elif m.weight > 0:
                acc = min(acc, m.value) if m.reduce == "min" else max(acc, m.value)
            self.state[name] = (kind, acc, weight + m.weight)

    def kinds(self) -> list[tuple[str, str]]:
        """Sorted (name, reduction) pairs, for agreeing on the keys across ranks."""
        return sorted((name, kind) for name, (kind, _, _) in self.state.items())

    def all_reduce(
        self,
        kinds: list[tuple[str, str]],
        reduce_sum: Callable[[list[float]], list[float]],
        reduce_max: Callable[[list[float]], list[float]],
    ) -> None:
        """Combine with the other ranks in two collectives (SUM, then MAX; min as -max of -x).
        ``kinds`` is the union of every rank's ``kinds()``; names this rank lacks count as
        empty here."""
        for name, kind in kinds:
            if name not in self.state:
                self.state[name] = (kind, _identity(kind), 0.0)
        summed = [n for n, k in kinds if k in (*_MEANS, "sum")]
        extreme = [n for n, k in kinds if k in ("min", "max")]
        flat = [self.state[n][1] for n in summed] + [self.state[n][2] for n, _ in kinds]
        out = reduce_sum(flat)
        weights = dict(zip([n for n, _ in kinds], out[len(summed) :]))
        for name, value in zip(summed, out[: len(summed)]):
            self.state[name] = (self.state[name][0], value, weights[name])
        signed = [(-1.0 if self.state[n][0] == "min" else 1.0) * self.state[n][1] for n in extreme]
        for name, value in zip(extreme, reduce_max(signed)):
            kind = self.state[name][0]
            self.state[name] = (kind, -value if kind == "min" else value, weights[name])

    def result(self) -> dict[str, float]:
        """One number per name; means and extremes that saw no weight are left out."""
        out: dict[str, float] = {}
        for name in sorted(self.state):
            kind, acc, weight = self.state[name]
            if kind in _MEANS:
                if weight > 0:
                    out[name] = acc / weight
            elif kind == "sum" or math.isfinite(acc):
                out[name] = acc
        return out


def over_mini_batches(rows: list[dict[str, float]], kinds: dict[str, str]) -> dict[str, float]:
    """One value per metric over a call's mini-batches: the mean of the per-mini-batch values
    (each already reduced over micro-batches and ranks), the extreme for min/max."""
    out: dict[str, float] = {}
    for name in sorted({k for row in rows for k in row}):
        values = [row[name] for row in rows if name in row]
        kind = kinds.get(name, "sum")
        if kind == "min":
            out[name] = min(values)
        elif kind == "max":
            out[name] = max(values)
        else:
            out[name] = sum(values) / len(values)
    return out


def _identity(kind: str) -> float:
    return {"min": math.inf, "max": -math.inf}.get(kind, 0.0)
