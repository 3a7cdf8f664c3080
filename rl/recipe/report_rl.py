"""The learning section of the pipeline report: per RL stage and mode, held-out accuracy
before and after on the same prompts with the paired difference and its 95% interval,
pass@1 / pass@k before and after, the per-family breakdown, the held-out curve during the
stage (Wilson 95% bands), the reward components per step and a few completions before/after.

"Before" is the eval of the stage that produced the RL stage's starting model (longcot for
rlvr, fusion for rl_mixed); both evals read ``<stage>/eval_records.json`` written by
``sailrl eval --records`` (``rl.loop.evaluation.prompt_records``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policy.vocab import MODES
from rl.loop.eval_stats import paired_diff, wilson
from rl.run.runlog import read_metrics
from rl.tasks.trace import step_match

CI_METHOD = "paired normal: mean(after - before) +- 1.96 sd / sqrt(n) over prompts"
COMPONENTS = ("answer", "format", "think_quality")
NOT_COMPONENTS = ("worker_restarts",)  # reward/* metrics that are not a reward's value


def prompt_values(records: Sequence[dict[str, Any]], mode: str) -> dict[int, float]:
    """Per prompt of ``mode``: the mean correctness over its scored samples.

    >>> prompt_values([{"i": 0, "mode": "think", "values": [1.0, 0.0]},
    ...                {"i": 1, "mode": "think", "values": [None]}], "think")
    {0: 0.5}
    """
    out = {}
    for r in records:
        vals = [v for v in r["values"] if v is not None]
        if r["mode"] == mode and vals:
            out[r["i"]] = sum(vals) / len(vals)
    return out


def trace_steps(records: Sequence[dict[str, Any]], mode: str) -> dict[int, float]:
    """Per prompt of ``mode`` with a reference thought: the share of its steps the first
    sample's thinking writes as the reference does (``rl.tasks.trace.step_match``).

    >>> trace_steps([{"i": 0, "mode": "think", "thought": "a = 1. b = 2.",
    ...               "text": "<think>a = 1. b = 3.</think> 2"}], "think")
    {0: 0.5}
    """
    return {
        r["i"]: step_match(r["text"], "", {"thought": r["thought"]})
        for r in records
        if r["mode"] == mode and r.get("thought")
    }


def compare_mode(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], mode: str
) -> dict[str, Any] | None:
    """Accuracy before/after on the prompts both evals scored, the paired difference with its
    interval, Wilson intervals of both, and the per-family accuracies."""
    b, a = prompt_values(before, mode), prompt_values(after, mode)
    common = sorted(set(b) & set(a))
    if not common:
        return None
    xs, ys = [b[i] for i in common], [a[i] for i in common]
    diff, (lo, hi) = paired_diff(xs, ys)
    n = len(common)
    acc_b, acc_a = sum(xs) / n, sum(ys) / n
    fam_of = {r["i"]: r["family"] for r in after if r["mode"] == mode}
    families: dict[str, dict[str, Any]] = {}
    for i in common:
        f = families.setdefault(fam_of[i], {"before": 0.0, "after": 0.0, "n": 0})
        f["before"] += b[i]
        f["after"] += a[i]
        f["n"] += 1
    for f in families.values():
        f["before"] /= f["n"]
        f["after"] /= f["n"]
    sb, sa = trace_steps(before, mode), trace_steps(after, mode)
    stepped = [i for i in common if i in sb and i in sa]
    steps = None
    if stepped and mode == "think":
        steps = {
            "before": sum(sb[i] for i in stepped) / len(stepped),
            "after": sum(sa[i] for i in stepped) / len(stepped),
            "n": len(stepped),
        }
    return {
        "before": acc_b,
        "after": acc_a,
        "n": n,
        "diff": diff,
        "ci95": [lo, hi],
        "ci_method": CI_METHOD,
        "before_ci95": list(wilson(acc_b, n)),
        "after_ci95": list(wilson(acc_a, n)),
        "families": dict(sorted(families.items())),
        # how much of the reference reasoning the greedy thinking writes (None: no references)
        "trace_steps": steps,
    }


def curve(rows: Sequence[dict[str, Any]], mode: str) -> list[list[float]]:
    """``[step, accuracy, lo, hi]`` of each in-loop held-out eval of ``mode`` (Wilson band
    over the prompts evaluated).

    >>> curve([{"step": 4, "eval/think/accuracy": 0.5, "eval/think/prompts": 100.0}], "think")
    [[4, 0.5, 0.4038, 0.5962]]
    """
    out = []
    for row in rows:
        acc = row.get(f"eval/{mode}/accuracy")
        if acc is None:
            continue
        n = int(row.get(f"eval/{mode}/prompts", row.get(f"eval/{mode}/samples", 0)))
        lo, hi = wilson(acc, n)
        out.append([row["step"], acc, round(lo, 4), round(hi, 4)])
    return out


def reward_components(rows: Sequence[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """Per step: the mean total reward and each reward component the metrics logged (the
    built-in ones first, then plug-ins such as the demo's ``steps``, by name).

    >>> reward_components([{"step": 1, "reward/mean": 0.5, "reward/steps": 0.25,
    ...                     "reward/answer": 1.0, "reward/answer/answer_found": 1.0,
    ...                     "reward/worker_restarts": 0.0}])
    {'mean': [[1, 0.5]], 'answer': [[1, 1.0]], 'steps': [[1, 0.25]]}
    """
    logged = {k[len("reward/") :] for r in rows for k in r if k.startswith("reward/")}
    plugins = sorted(
        n for n in logged if "/" not in n and n not in ("mean", *COMPONENTS, *NOT_COMPONENTS)
    )
    out: dict[str, list[list[float]]] = {}
    for name in ("mean", *COMPONENTS, *plugins):
        points = [[r["step"], r[f"reward/{name}"]] for r in rows if f"reward/{name}" in r]
        if points:
            out[name] = points
    return out


def _pass(records: dict[str, Any] | None, mode: str) -> dict[str, float] | None:
    if not records or "pass" not in records:
        return None
    from rl.loop.evaluation import pass_metrics

    p = records["pass"]
    mine = [r for r in p["records"] if r["mode"] == mode]
    got = pass_metrics(mine, p["k"])
    return {key.rpartition("/")[2]: v for key, v in got.items()} or None


def shown_samples(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], mode: str, count: int
) -> list[dict[str, Any]]:
    """``count`` prompts of ``mode`` scored in both evals, one per family in turn (the first
    prompt of each family, then the second, ...; not chosen by outcome): the first
    completion before and after.

    >>> recs = [{"i": i, "mode": "think", "family": "ab"[i % 2], "values": [0.0], "text": ""}
    ...         for i in range(6)]
    >>> [x["i"] for x in shown_samples(recs, recs, "think", 3)]
    [0, 1, 2]
    """
    b = {r["i"]: r for r in before if r["mode"] == mode}
    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in sorted((r for r in after if r["mode"] == mode), key=lambda r: r["i"]):
        if r["i"] in b:
            by_family.setdefault(r["family"], []).append(r)
    picked: list[dict[str, Any]] = []
    depth = max((len(v) for v in by_family.values()), default=0)
    for j in range(depth):
        picked += [rows[j] for rows in by_family.values() if j < len(rows)]
    out = []
    for r in sorted(picked[:count], key=lambda r: r["i"]):
        out.append({
            "i": r["i"], "mode": mode, "family": r["family"], "prompt": r.get("prompt"),
            "answer": r.get("answer"), "before": b[r["i"]]["text"],
            "before_value": b[r["i"]]["values"][0], "after": r["text"],
            "after_value": r["values"][0],
        })  # fmt: skip
    return out


def read_records(info: dict[str, Any] | None) -> dict[str, Any] | None:
    path = (info or {}).get("eval_records")
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def rl_section(
    results: dict[str, Any], modes: Sequence[str] = MODES, shown: int = 3
) -> dict[str, Any]:
    """The learning numbers of every RL stage in ``results`` (the pipeline's stage infos).
    Completions are shown for the modes the stage's model is trained to answer in: think
    only in ``rlvr`` (its LongCoT model never learnt the direct mode), all in the others."""
    section: dict[str, Any] = {}
    previous: tuple[str, dict[str, Any]] | None = None  # the last stage that made a model
    for name, info in results.items():
        if name != "initial" and info.get("run") and "algo" in info:
            section[name] = _stage(name, info, previous, modes, shown)
        if name != "initial" and "eval" in info:
            previous = (name, info)
    return section


def _stage(name, info, previous, modes, shown) -> dict[str, Any]:
    rows = read_metrics(info["run"])
    after = read_records(info)
    before_name, before_info = previous if previous else (None, None)
    before = read_records(before_info)
    out: dict[str, Any] = {"before_stage": before_name, "modes": {}, "samples": []}
    out["reward_components"] = reward_components(rows)
    # seconds the in-loop held-out evals (the curve points) added to the stage
    out["curve_eval_seconds"] = round(sum(r.get("time/eval", 0.0) for r in rows), 1)
    for mode in modes:
        entry: dict[str, Any] = {}
        if before and after:
            entry.update(compare_mode(before["accuracy"], after["accuracy"], mode) or {})
            if name != "rlvr" or mode == "think":
                out["samples"] += shown_samples(before["accuracy"], after["accuracy"], mode, shown)
        pass_b, pass_a = _pass(before, mode), _pass(after, mode)
        if pass_b or pass_a:
            entry["pass"] = {"k": (after or before)["pass"]["k"], "before": pass_b, "after": pass_a}
        points = curve(rows, mode)
        if points and "before" in entry:  # step 0: the starting model's held-out eval
            lo, hi = entry["before_ci95"]
            points = [[0, entry["before"], round(lo, 4), round(hi, 4)], *points]
        if points:
            entry["curve"] = points
        if entry:
            out["modes"][mode] = entry
    return out
