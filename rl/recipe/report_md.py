"""The report.md text of the learning section (``rl.recipe.report_rl``)."""

from __future__ import annotations

from typing import Any

LEARNING = "<!-- learning -->"  # where report.md places the learning section


def _f(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"


def _pass(entry: dict[str, Any], key: str) -> str:
    p = entry.get("pass")
    if not p:
        return "-"
    return f"{_f((p['before'] or {}).get(key))} -> {_f((p['after'] or {}).get(key))}"


def _clip(text: Any, limit: int = 240) -> str:
    text = str(text or "").replace("```", "'''")
    return text if len(text) <= limit else text[:limit] + " ..."


def learning_markdown(rl: dict[str, Any]) -> str:
    """Per RL stage: before/after with the paired 95% interval, pass@k, per family, the
    held-out curve, reward components first -> last, completions before/after."""
    if not rl:
        return ""
    lines = [
        "## Learning in the RL stages",
        "",
        "Before = the starting model's held-out eval (the previous stage's), after = this "
        "stage's, on the same prompts. diff = mean per-prompt after - before; its 95% "
        "interval is the paired normal interval (mean +- 1.96 sd/sqrt(n)). pass@k: the "
        "unbiased estimator over n samples per prompt at the pass temperature.",
    ]
    for stage, s in rl.items():
        modes = s["modes"]
        lines += ["", f"### {stage} (starts from {s.get('before_stage') or '-'})", ""]
        ks = sorted({k for e in modes.values() for side in ("before", "after")
                     for k in ((e.get("pass") or {}).get(side) or {})},
                    key=lambda k: int(k.partition("@")[2]))  # fmt: skip
        lines += [
            "| mode | n | before | after | diff | 95% CI of diff | " + " | ".join(ks) + " |",
            "|---|---|---|---|---|---|" + "---|" * len(ks),
        ]
        for mode, e in modes.items():
            ci = e.get("ci95")
            ci_text = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "-"
            diff = f"{e['diff']:+.3f}" if "diff" in e else "-"
            lines.append(
                f"| {mode} | {e.get('n', '-')} | {_f(e.get('before'))} | {_f(e.get('after'))} | "
                f"{diff} | {ci_text} | " + " | ".join(_pass(e, k) for k in ks) + " |"
            )
        fam_rows = [(m, f, v) for m, e in modes.items() for f, v in e.get("families", {}).items()]
        if fam_rows:
            lines += ["", "| mode | family | n | before | after |", "|---|---|---|---|---|"]
            lines += [f"| {m} | {f} | {v['n']} | {_f(v['before'])} | {_f(v['after'])} |"
                      for m, f, v in fam_rows]  # fmt: skip
        for mode, e in modes.items():
            st = e.get("trace_steps")
            if st:
                lines += ["", f"Reference steps written in the {mode} traces (greedy, "
                          f"{st['n']} prompts; `rl.tasks.trace.step_match`): "
                          f"{st['before']:.3f} -> {st['after']:.3f}"]  # fmt: skip
        for mode, e in modes.items():
            if e.get("curve"):
                pts = ", ".join(f"{p[0]}: {p[1]:.3f} [{p[2]:.2f}, {p[3]:.2f}]" for p in e["curve"])
                lines += ["", f"Held-out {mode} accuracy by step (95% Wilson): {pts}"]
        if s.get("curve_eval_seconds"):
            lines += ["", f"The in-loop held-out evals (curve points) took "
                      f"{s['curve_eval_seconds']:.1f} s of the stage."]  # fmt: skip
        comps = s.get("reward_components") or {}
        if comps:
            parts = [f"{n} {p[0][1]:.3f} -> {p[-1][1]:.3f}" for n, p in comps.items()]
            lines += ["", "Reward components, first -> last step: " + "; ".join(parts)]
        if s.get("samples"):
            lines += ["", "Completions before / after (greedy, same prompts):"]
            for x in s["samples"]:
                lines += [
                    "",
                    f"- prompt {x['i']} ({x['mode']} mode, {x['family']}; reference "
                    f"answer `{x.get('answer')}`): {_clip(x.get('prompt'), 160)}",
                    f"  - before (correctness {_f(x['before_value'])}):",
                    "    ```",
                    *[f"    {ln}" for ln in _clip(x["before"]).splitlines()],
                    "    ```",
                    f"  - after (correctness {_f(x['after_value'])}):",
                    "    ```",
                    *[f"    {ln}" for ln in _clip(x["after"]).splitlines()],
                    "    ```",
                ]
    return "\n".join(lines)
