"""The pipeline's report: ``report.json`` (machine-readable) and ``report.md`` with PNG plots.

Per stage: held-out accuracy and format rate in thinking and non-thinking modes, mean
response length, wall time; for RL stages also the reward curve (mean reward per step) and
the learning section ``rl`` (``rl.report_rl``: before/after with the paired interval, pass@k,
per family, held-out curves, reward components, completions before/after).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl.report_md import LEARNING as _LEARNING
from rl.report_md import learning_markdown
from rl.runlog import read_metrics

MODES = ("think", "direct")


def stage_summary(info: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one stage, from its DONE info (eval metrics, run dir).

    >>> s = stage_summary({"eval": {"eval/think/accuracy": 0.5, "eval/think/format_rate": 1.0,
    ...                             "eval/think/response_length": 30.0}, "seconds": 3})
    >>> s["think"]
    {'accuracy': 0.5, 'format_rate': 1.0, 'response_length': 30.0}
    """
    ev = info.get("eval", {})
    out: dict[str, Any] = {"seconds": info.get("seconds")}
    for mode in MODES:
        if f"eval/{mode}/accuracy" in ev:
            out[mode] = {
                "accuracy": ev[f"eval/{mode}/accuracy"],
                "format_rate": ev[f"eval/{mode}/format_rate"],
                "response_length": ev[f"eval/{mode}/response_length"],
            }
    for key in ("seconds", "pass_seconds"):  # what the held-out eval after the stage took
        if f"eval/{key}" in ev:
            out[f"eval_{key}"] = round(ev[f"eval/{key}"], 1)
    if info.get("run") and "algo" in info:  # an RL stage: its reward curve
        rows = read_metrics(info["run"])
        out["algo"] = info["algo"]
        out["reward_curve"] = [
            [row["step"], row["reward/mean"]] for row in rows if "reward/mean" in row
        ]
    for key in ("traces", "data"):
        if key in info:
            out[key] = info[key]
    return out


def write_report(
    root: str | Path, results: dict[str, Any], modes: Sequence[str] = MODES, shown: int = 3
) -> dict[str, Any]:
    """Write report.json, report.md and plots under ``root``; returns the report dict.
    ``shown``: completions per RL stage and mode shown before/after in report.md."""
    from rl.report_plots import learning_plots
    from rl.report_rl import rl_section

    root = Path(root)
    report = {
        "stages": {
            name: stage_summary(info) for name, info in results.items() if name != "initial"
        },
        "rl": rl_section(results, modes, shown),
    }
    (root / "report.json").write_text(json.dumps(report, indent=1))
    plots = _plots(root, report["stages"]) + learning_plots(root, report["rl"])
    md = _markdown(report["stages"], plots)
    (root / "report.md").write_text(md.replace(_LEARNING, learning_markdown(report["rl"])))
    return report


def _plots(root: Path, stages: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, s in stages.items() if any(m in s for m in MODES)]
    made = []
    if names:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, metric in zip(axes, ("accuracy", "format_rate")):
            width = 0.38
            for k, mode in enumerate(MODES):
                values = [stages[n].get(mode, {}).get(metric, 0.0) for n in names]
                xs = [i + (k - 0.5) * width for i in range(len(names))]
                ax.bar(xs, values, width, label=f"{mode} mode")
            ax.set_xticks(range(len(names)), names, rotation=20)
            ax.set_ylim(0, 1)
            ax.set_title(f"held-out {metric.replace('_', ' ')}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(root / "eval.png", dpi=110)
        plt.close(fig)
        made.append("eval.png")
    curves = {n: s["reward_curve"] for n, s in stages.items() if s.get("reward_curve")}
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name, curve in curves.items():
            ax.plot([p[0] for p in curve], [p[1] for p in curve], marker=".", label=name)
        ax.set_xlabel("RL step")
        ax.set_ylabel("mean reward")
        ax.set_title("reward per step")
        ax.legend()
        fig.tight_layout()
        fig.savefig(root / "reward.png", dpi=110)
        plt.close(fig)
        made.append("reward.png")
    return made


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def _markdown(stages: dict[str, Any], plots: list[str]) -> str:
    lines = [
        "# sailrl pipeline report",
        "",
        "Held-out evaluation after each stage (accuracy = mean over samples; format rate = share",
        "of answers in the mode's format).",
        "",
        "| stage | think acc | think format | direct acc | direct format | think len | direct len | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in stages.items():
        t, d = s.get("think", {}), s.get("direct", {})
        lines.append(
            f"| {name} | {_fmt(t.get('accuracy'))} | {_fmt(t.get('format_rate'))} | "
            f"{_fmt(d.get('accuracy'))} | {_fmt(d.get('format_rate'))} | "
            f"{_fmt(t.get('response_length'))} | {_fmt(d.get('response_length'))} | "
            f"{_fmt(s.get('seconds'))} |"
        )
    for name, s in stages.items():
        curve = s.get("reward_curve")
        if curve:
            first, last = curve[0][1], curve[-1][1]
            lines += ["", f"{name} ({s.get('algo')}): mean reward {first:.3f} at step "
                      f"{curve[0][0]} -> {last:.3f} at step {curve[-1][0]}"]  # fmt: skip
    lines += ["", _LEARNING, ""]
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"
