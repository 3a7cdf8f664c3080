"""The report's learning section on a small fake pipeline run (no Ray, no engine): paired
before/after numbers, pass@k, per family, curves with bands, reward components, samples."""

from __future__ import annotations

import json

import pytest

from rl.loop.eval_stats import paired_diff, wilson
from rl.recipe.pipeline import EvalStage, Pipeline, PipelineConfig, PipelineData
from rl.recipe.report import write_report


def _records(values: list[float], mode: str = "think", pass_values=None, k: int = 2) -> dict:
    fams = ["count", "chart"]
    recs = [
        {"i": i, "mode": mode, "family": fams[i % 2], "values": [v], "format": [1.0],
         "text": f"<think>t{i}</think> \\boxed{{{v}}}", "answer": "1", "prompt": f"q{i}"}
        for i, v in enumerate(values)
    ]  # fmt: skip
    out = {"accuracy": recs}
    if pass_values is not None:
        out["pass"] = {"k": k, "n": len(pass_values[0]), "temperature": 1.0, "records": [
            {"i": i, "mode": mode, "family": fams[i % 2], "values": vs, "format": [], "text": ""}
            for i, vs in enumerate(pass_values)
        ]}  # fmt: skip
    return out


def _stage(tmp_path, name, records, metrics=None, algo=None) -> dict:
    d = tmp_path / name
    d.mkdir()
    (d / "eval_records.json").write_text(json.dumps(records))
    acc = sum(r["values"][0] for r in records["accuracy"]) / len(records["accuracy"])
    info = {"model": str(d), "eval": {"eval/think/accuracy": acc, "eval/think/format_rate": 1.0,
            "eval/think/response_length": 9.0}, "eval_records": str(d / "eval_records.json")}  # fmt: skip
    if metrics is not None:
        (d / "run").mkdir()
        (d / "run" / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
        info.update(run=str(d / "run"), algo=algo)
    return info


def test_report_has_paired_numbers_curves_pass_at_k_and_samples(tmp_path):
    before = [0, 0, 1, 0, 1, 0, 0, 0]
    after = [1, 0, 1, 1, 1, 0, 1, 0]
    metrics = [
        {"step": 1, "reward/mean": 0.2, "reward/answer": 0.1, "reward/format": 1.0},
        {"step": 2, "reward/mean": 0.4, "reward/answer": 0.3, "reward/format": 1.0,
         "eval/think/accuracy": 0.625, "eval/think/prompts": 8.0},
    ]  # fmt: skip
    results = {
        "initial": {"model": "m0"},
        "longcot": _stage(tmp_path, "longcot", _records(before, pass_values=[[1, 0]] * 8)),
        "filter": {"data": "x.jsonl", "seconds": 1},
        "rlvr": _stage(tmp_path, "rlvr", _records(after, pass_values=[[1, 1]] * 4 + [[0, 0]] * 4),
                       metrics, "dapo"),
    }  # fmt: skip
    report = write_report(tmp_path, results, modes=["think", "direct"], shown=2)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["rl"] == json.loads(json.dumps(report["rl"]))
    rl = on_disk["rl"]["rlvr"]
    assert rl["before_stage"] == "longcot"  # the filter stage made no model
    think = rl["modes"]["think"]
    assert think["n"] == 8 and think["before"] == 0.25 and think["after"] == 0.625
    diff, ci = paired_diff(before, after)
    assert think["diff"] == pytest.approx(diff) and think["ci95"] == pytest.approx(list(ci))
    # count: prompts 0, 2, 4, 6; chart: 1, 3, 5, 7
    assert think["families"]["count"] == {"before": 0.5, "after": 1.0, "n": 4}
    assert think["families"]["chart"] == {"before": 0.0, "after": 0.25, "n": 4}
    assert think["pass"]["k"] == 2
    assert think["pass"]["before"] == {"pass@1": 0.5, "pass@2": 1.0}
    assert think["pass"]["after"] == {"pass@1": 0.5, "pass@2": 0.5}
    lo, hi = wilson(0.625, 8)
    # step 0 is the starting model's eval, then the in-loop points
    assert [p[:2] for p in think["curve"]] == [[0, 0.25], [2, 0.625]]
    assert think["curve"][1][2:] == [round(lo, 4), round(hi, 4)]
    assert "direct" not in rl["modes"]  # neither eval had direct records
    assert rl["reward_components"]["answer"] == [[1, 0.1], [2, 0.3]]
    assert rl["reward_components"]["format"] == [[1, 1.0], [2, 1.0]]
    assert [s["i"] for s in rl["samples"]] == [0, 1]
    assert rl["samples"][0]["before_value"] == 0 and rl["samples"][0]["after_value"] == 1
    for png in ("curves.png", "pass_at_k.png", "families.png", "reward_components.png"):
        assert (tmp_path / png).stat().st_size > 1000, png
    md = (tmp_path / "report.md").read_text()
    assert "### rlvr (starts from longcot)" in md
    assert f"| think | 8 | 0.250 | 0.625 | +0.375 | [{ci[0]:+.3f}, {ci[1]:+.3f}] |" in md
    assert "| think | count | 4 | 0.500 | 1.000 |" in md
    assert "<think>t0</think>" in md and "![curves.png](curves.png)" in md


def test_report_counts_the_reference_steps_the_thinking_writes(tmp_path):
    ref = "max 3 5 = 5. max 5 2 = 5."
    wrote = {  # per prompt: what the greedy thinking says before and after RL
        0: ("max 3 5 = 5. max 5 2 = 5.", "max 5 5 = 5. max 5 5 = 5."),
        1: ("max 3 5 = 3. max 3 2 = 3.", "max 3 5 = 5. max 5 2 = 5."),
        2: ("max 3 5 = 5.", "max 3 5 = 5. max 5 2 = 5. max 5 2 = 5."),
    }

    def records(side: int) -> dict:
        return {"accuracy": [
            {"i": i, "mode": "think", "family": "digit_max", "values": [1.0], "format": [1.0],
             "text": f"<think>\n{w[side]}\n</think>\n\n\\boxed{{5}}", "answer": "5",
             "prompt": "q", "thought": ref}
            for i, w in wrote.items()
        ]}  # fmt: skip

    metrics = [{"step": 1, "reward/mean": 1.0}]
    results = {
        "longcot": _stage(tmp_path, "longcot", records(0)),
        "rlvr": _stage(tmp_path, "rlvr", records(1), metrics, "dapo"),
    }
    think = write_report(tmp_path, results, modes=["think"], shown=0)["rl"]["rlvr"]["modes"][
        "think"
    ]
    # before: 2/2, 0/2, 1/2 steps; after: 0/2, 2/2, 2/3 (an extra step counts against it)
    assert think["trace_steps"]["n"] == 3
    assert think["trace_steps"]["before"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert think["trace_steps"]["after"] == pytest.approx((0 + 1 + 2 / 3) / 3)
    md = (tmp_path / "report.md").read_text()
    assert "Reference steps written in the think traces (greedy, 3 prompts" in md
    assert "0.500 -> 0.556" in md


def test_report_without_records_keeps_the_old_shape(tmp_path):
    info = {"model": "m", "eval": {"eval/think/accuracy": 0.5, "eval/think/format_rate": 1.0,
            "eval/think/response_length": 3.0}}  # fmt: skip
    report = write_report(tmp_path, {"initial": {}, "longcot": info})
    assert report["rl"] == {} and report["stages"]["longcot"]["think"]["accuracy"] == 0.5
    assert "Learning" not in (tmp_path / "report.md").read_text()


def test_eval_stage_keys_are_validated_with_their_names():
    with pytest.raises(ValueError, match="eval.pass_n: must be >= eval.pass_k"):
        EvalStage(pass_k=8, pass_n=4)
    with pytest.raises(ValueError, match="eval.every: must be >= 0"):
        EvalStage(every=-1)
    with pytest.raises(ValueError, match="eval.pass_modes"):
        EvalStage(modes=["think"], pass_modes=["direct"])
    with pytest.raises(ValueError, match="eval.modes"):
        EvalStage(modes=["thinking"])
    with pytest.raises(ValueError, match="eval.every with eval.k > 1"):
        EvalStage(every=2, k=4, temperature=0.0)
    assert EvalStage().pass_k == 0 and EvalStage().every == 0  # off unless asked


def test_curve_settings_reach_the_rl_stages(tmp_path):
    data = PipelineData(longcot="a", direct="b", rl="c", eval="e.jsonl")
    cfg = PipelineConfig(data=data, eval=EvalStage(every=3, max_prompts=300))
    cfg.run.dir = str(tmp_path)
    p = Pipeline(cfg)
    p.data = {"eval": "e.jsonl"}
    rlvr = p._curve_loop("rlvr", cfg.rlvr.rl)
    mixed = p._curve_loop("rl_mixed", cfg.rl_mixed.rl)
    assert (rlvr.eval_every, rlvr.eval_max_prompts, rlvr.eval_modes) == (3, 300, ["think"])
    assert mixed.eval_modes == ["think", "direct"]
    # off by default; a stage's own rl.eval_every wins
    cfg.eval.every = 0
    assert p._curve_loop("rlvr", cfg.rlvr.rl) is cfg.rlvr.rl


def test_sailrl_eval_refuses_pass_n_below_pass_k_before_the_engine_starts(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "rl.cli", "eval", "--model", str(tmp_path / "m"),
         "--data", str(tmp_path / "e.jsonl"), "--pass-k", "4", "--pass-n", "2"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "need 1 <= k <= n samples, got k=4 n=2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_sends_every_mode_in_one_generate_call_and_keeps_records(tmp_path):
    from types import SimpleNamespace as NS

    from policy.checkpoint import init_checkpoint
    from policy.data import Example
    from policy.processor import SAILVLProcessor
    from rl.loop.evaluation import evaluate
    from rl.loop.prompts import PromptBuilder

    examples = [Example(f"Say {i}.", None, str(i), metadata={"family": "fa" if i < 2 else "fb"})
                for i in range(3)]  # fmt: skip
    examples[0].metadata["thought"] = "say 0."  # a reference thought travels with the record
    calls = []

    def generate(requests, sampling):
        calls.append([r.prompt_id for r in requests])
        # the model says "1" in both modes; in direct mode prompt 2 fails
        comps = [NS(prompt_id=r.prompt_id, text="\\boxed{1}", token_ids=(1,), finish_reason="stop")
                 for r in requests if r.prompt_id != "eval-2/direct" for _ in range(sampling.n)]  # fmt: skip
        fails = [NS(prompt_id="eval-2/direct", message="bad image")]
        return NS(completions=comps, failures=fails)

    def score(inputs):
        return [NS(components={"answer": float(x.completion == f"\\boxed{{{x.answer}}}"),
                               "format": 1.0}) for x in inputs], None  # fmt: skip

    # the builder renders and tokenises every prompt (the ids the engine gets)
    processor = SAILVLProcessor.from_pretrained(init_checkpoint("tiny", tmp_path / "m"))
    records = []
    m = evaluate(examples, ["think", "direct"], PromptBuilder(processor), generate, score,
                 samples=2, temperature=1.0, max_tokens=4, seed=0, records=records)  # fmt: skip
    assert len(calls) == 1 and len(calls[0]) == 6  # 3 prompts x 2 modes, one batch
    assert m["eval/think/accuracy"] == pytest.approx(1 / 3)
    assert m["eval/direct/accuracy"] == 0.5 and m["eval/direct/prompts"] == 2.0
    assert m["eval/direct/failed_prompts"] == 1.0 and m["eval/think/prompts"] == 3.0
    think = [r for r in records if r["mode"] == "think"]
    assert [(r["i"], r["family"], r["values"]) for r in think] == [
        (0, "fa", [0.0, 0.0]), (1, "fa", [1.0, 1.0]), (2, "fb", [0.0, 0.0])]  # fmt: skip
    assert [r["i"] for r in records if r["mode"] == "direct"] == [0, 1]
    assert think[0]["thought"] == "say 0." and "thought" not in think[1]
