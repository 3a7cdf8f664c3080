"""The PNGs of the report's learning section (``rl.recipe.report_rl``): held-out curves with their
95% bands, pass@k before/after, per-family accuracy before/after, reward components."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, root: Path, name: str, made: list[str]) -> None:
    fig.tight_layout()
    fig.savefig(root / name, dpi=110)
    _plt().close(fig)
    made.append(name)


def learning_plots(root: Path, rl: dict[str, Any]) -> list[str]:
    """Write curves.png, pass_at_k.png, families.png, reward_components.png (those with
    data) under ``root``; returns their names."""
    plt = _plt()

    made: list[str] = []
    stages = list(rl)
    with_curve = [s for s in stages if any("curve" in m for m in rl[s]["modes"].values())]
    if with_curve:
        fig, axes = plt.subplots(1, len(with_curve), figsize=(5.5 * len(with_curve), 3.6))
        for ax, stage in zip(_list(axes), with_curve):
            for mode, entry in rl[stage]["modes"].items():
                pts = entry.get("curve")
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                ax.plot(xs, [p[1] for p in pts], marker=".", label=f"{mode} mode")
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.2)
            _step_axes(
                ax, 1.0, "held-out accuracy", f"{stage}: held-out accuracy (95% Wilson band)"
            )
        _save(fig, root, "curves.png", made)
    bars = [(s, m, e["pass"]) for s in stages for m, e in rl[s]["modes"].items() if "pass" in e]
    if bars:
        fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(bars)), 3.6))
        keys = sorted({k for _, _, p in bars for side in ("before", "after") for k in (p[side] or {})},
                      key=lambda k: int(k.partition("@")[2]))  # fmt: skip
        width = 0.8 / (2 * len(keys))
        j = 0
        for side in ("before", "after"):
            for key in keys:
                vals = [(p[side] or {}).get(key, 0.0) for _, _, p in bars]
                xs = [i - 0.4 + (j + 0.5) * width for i in range(len(bars))]
                ax.bar(xs, vals, width, label=f"{key} {side}", alpha=0.6 if side == "before" else 1)
                j += 1
        ax.set_xticks(range(len(bars)), [f"{s}\n{m}" for s, m, _ in bars])
        ax.set_ylim(0, 1)
        ax.set_title("pass@1 / pass@k before and after each RL stage")
        ax.legend(fontsize=7, ncol=2)
        _save(fig, root, "pass_at_k.png", made)
    fams = [(s, m, e["families"]) for s in stages for m, e in rl[s]["modes"].items()
            if e.get("families")]  # fmt: skip
    if fams:
        fig, axes = plt.subplots(1, len(fams), figsize=(4.5 * len(fams), 3.8))
        for ax, (stage, mode, fam) in zip(_list(axes), fams):
            names = list(fam)
            for k, side in enumerate(("before", "after")):
                xs = [i + (k - 0.5) * 0.38 for i in range(len(names))]
                ax.bar(xs, [fam[n][side] for n in names], 0.38, label=side)
            ax.set_xticks(range(len(names)), names, rotation=30, fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_title(f"{stage} / {mode}: per family", fontsize=9)
            ax.legend(fontsize=7)
        _save(fig, root, "families.png", made)
    comps = [s for s in stages if rl[s].get("reward_components")]
    if comps:
        fig, axes = plt.subplots(1, len(comps), figsize=(5.5 * len(comps), 3.6))
        for ax, stage in zip(_list(axes), comps):
            for name, pts in rl[stage]["reward_components"].items():
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".",
                        label="total (weighted)" if name == "mean" else name)  # fmt: skip
            _step_axes(ax, 1.05, "mean over the step's samples", f"{stage}: reward components")
        _save(fig, root, "reward_components.png", made)
    return made


def _list(axes) -> list:
    return list(axes) if hasattr(axes, "__len__") else [axes]


def _step_axes(ax: Any, ymax: float, ylabel: str, title: str) -> None:
    """The axes of a per-RL-step plot: integer steps, values from 0 to ``ymax``."""
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(0, ymax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("RL step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
