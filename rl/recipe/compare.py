"""``sailrl compare RUN_DIR...``: the metrics of several runs on the same axes, and a table of
their final numbers.

A RUN_DIR is a run directory (``metrics.jsonl``, as every stage writes) or a directory holding
runs (a pipeline's root: each stage's ``<stage>/run``); every ``metrics.jsonl`` found is one
curve, labelled by its path. Metrics default to the common ones that the runs have
(reward, held-out accuracy, loss, response length, step time); ``--metrics`` picks others.

    sailrl compare runs/demo-a runs/demo-b --out compare.png
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl.run.runlog import read_metrics

DEFAULT_METRICS = (
    "reward/mean",
    "eval/think/accuracy",
    "eval/direct/accuracy",
    "train/loss",
    "loss",  # SFT stages
    "response/length_mean",
    "time/step",
)


def find_runs(roots: Sequence[str | Path]) -> dict[str, Path]:
    """Label -> run directory for every ``metrics.jsonl`` under ``roots`` (FileNotFoundError
    naming a root with none)."""
    labelled: list[tuple[str, Path]] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"run directory not found: {root}")
        found = sorted(p.parent for p in root.rglob("metrics.jsonl"))
        if not found:
            raise FileNotFoundError(f"{root}: no metrics.jsonl in it or below it")
        for run in found:
            rel = run.relative_to(root)
            label = root.name if rel == Path(".") else f"{root.name}/{rel}".removesuffix("/run")
            labelled.append((label, run))
    if len({label for label, _ in labelled}) < len(labelled):
        # the same name twice (runs/a/rlvr/run and runs/b/rlvr/run): label each by its path
        # below the directory all of them share
        base = Path(os.path.commonpath([str(run.resolve()) for _, run in labelled]))
        labelled = [
            (str(run.resolve().relative_to(base)).removesuffix("/run") or run.name, run)
            for _, run in labelled
        ]
    return dict(labelled)


def series(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of ``key`` where it is a finite number.

    >>> series([{"step": 1, "a": 0.5}, {"step": 2}, {"step": 3, "a": float("nan")}], "a")
    [(1, 0.5)]
    """
    out = []
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(row["step"]), float(value)))
    return out


def pick_metrics(all_rows: dict[str, list[dict[str, Any]]], wanted: Sequence[str] | None):
    """The metrics to show: ``wanted``, or the defaults some run has."""
    if wanted:
        return list(wanted)
    present = [k for k in DEFAULT_METRICS if any(series(r, k) for r in all_rows.values())]
    if present:
        return present
    keys = {k for rows in all_rows.values() for row in rows for k in row}
    return sorted(k for k in keys if k not in ("step", "time_s"))[:6]


def final_table(all_rows: dict[str, list[dict[str, Any]]], metrics: Sequence[str]) -> str:
    """A plain-text table: one row per run, its step count and each metric's last value.

    >>> print(final_table({"a": [{"step": 1, "r": 0.25}, {"step": 2, "r": 0.5}]}, ["r"]))
    run  steps       r
    a        2  0.5000
    """
    width = max(3, *(len(label) for label in all_rows))
    head = f"{'run':<{width}}  {'steps':>5}" + "".join(f"  {m:>{max(6, len(m))}}" for m in metrics)
    lines = [head]
    for label, rows in all_rows.items():
        steps = max((int(r["step"]) for r in rows), default=0)
        cells = []
        for m in metrics:
            points = series(rows, m)
            text = f"{points[-1][1]:.4f}" if points else "-"
            cells.append(f"  {text:>{max(6, len(m))}}")
        lines.append(f"{label:<{width}}  {steps:>5}" + "".join(cells))
    return "\n".join(lines)


def plot(all_rows: dict[str, list[dict[str, Any]]], metrics: Sequence[str], out: str | Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for k, (label, rows) in enumerate(all_rows.items()):
            points = series(rows, metric)
            if points:  # one colour per run on every panel
                marker = "o" if len(points) < 30 else None
                ax.plot(*zip(*points), color=f"C{k % 10}", marker=marker, ms=3, label=label)
        ax.set(title=metric, xlabel="step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    legend: dict[str, Any] = {}  # one entry per run, whichever panels it appears in
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)


def compare(roots: Sequence[str | Path], out: str | Path, metrics: Sequence[str] | None = None):
    """Write the PNG; return (table text, metrics shown, labels)."""
    runs = find_runs(roots)
    all_rows = {label: read_metrics(path) for label, path in runs.items()}
    shown = pick_metrics(all_rows, metrics)
    plot(all_rows, shown, out)
    return final_table(all_rows, shown), shown, list(runs)
