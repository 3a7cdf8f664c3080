"""``sailrl bench trl``: the same RL work through sailrl and through TRL's GRPOTrainer.

Per model preset (``tiny`` and the ~106M ``small``) both systems start from the same weights
(the SAIL-VL2 language model exported as a plain ``Qwen3ForCausalLM`` for TRL), see the same
text-only prompts in the same order rendered by the same template, score with the same reward
function and train with the same group size, lengths, learning rate, AdamW settings, DAPO loss
(no KL) in float32. sailrl runs its normal stack (RL driver, Ray actors, vLLM engine, DeepSpeed
learner, reward pool) with ``configs/tiny-rl.yaml``'s resources, and again colocated
(``ray.colocate=true``: the same learner, engine and reward pool in one process, no Ray);
TRL runs HF ``generate`` on the CPU (it has no CPU vLLM mode). Each side runs in its own
process; a sampler sums the RSS of that process and all its descendants (Ray's raylet,
workers, forkserver children...).

    sailrl bench trl --models tiny            # about 2 minutes on 2 cores
    sailrl bench trl                          # tiny and small (several minutes per side)
    sailrl bench trl --sides sailrl_colocated # one sailrl side (and TRL)

Prints a table per model, writes ``trl-bench.png`` (the reward curves), and ends with one
JSON line: per model, ``step_time_ratio`` and ``rss_ratio`` per sailrl side (TRL s / its s
at the median step; its peak RSS / TRL's) and ``peak_rss_mb`` ``{"sailrl": ..,
"sailrl_colocated": .., "trl": ..}``. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rl.bench.memory import TreeMemory

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny-rl.yaml"
REWARD = "rl.tasks.sanity:digit_fraction"  # the tiny-rl recipe's reward
# Per model: prompts per step, group size, new tokens, steps, learning rate.
DEFAULTS = {
    "tiny": {"prompts": 4, "group_size": 8, "max_new_tokens": 24, "steps": 8, "lr": 1e-2},
    "small": {"prompts": 8, "group_size": 8, "max_new_tokens": 64, "steps": 3, "lr": 1e-5},
}
# sailrl's normal stack (Ray actors) and its colocated mode (ray.colocate: one process)
SAILRL_SIDES = ("sailrl", "sailrl_colocated")
SIDES = (*SAILRL_SIDES, "trl")
JSON_INLINE = True  # rl.cli.bench prints this bench's JSON on one line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=sorted(DEFAULTS))
    for key in ("prompts", "group_size", "max_new_tokens", "steps"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                            help=f"override the per-model default ({key})")  # fmt: skip
    parser.add_argument("--lr", type=float, default=None, help="override the per-model default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES,
                        help="which systems run (trl is always one of them)")  # fmt: skip
    parser.add_argument("--png", default="trl-bench.png", help="reward curves of both systems")
    parser.add_argument("--timeout-s", type=float, default=1800, help="per side")


def settings_for(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """The shared settings of one model: per-model defaults, command-line overrides, and the
    optimiser / loss values read from the sailrl configs, so both sides use the same numbers."""
    from policy.learner_config import LearnerConfig
    from rl.algos.ppo_clip import Dapo

    s = dict(DEFAULTS[model])
    for key in (*s, "lr"):
        if getattr(args, key, None) is not None:
            s[key] = getattr(args, key)
    learner, algo = LearnerConfig(), Dapo()
    s.update(temperature=1.0, top_p=1.0, betas=list(learner.betas), adam_eps=learner.eps,
             weight_decay=learner.weight_decay, grad_clip=1.0, clip_low=algo.clip_low,
             clip_high=algo.clip_high)  # fmt: skip
    return s


def sailrl_overrides(model: str, s: dict[str, Any], run_dir: Path, seed: int) -> list[str]:
    return [
        f"model.preset={model}", f"run.dir={run_dir}", f"run.seed={seed}",
        f"rl.steps={s['steps']}", f"rl.prompts_per_step={s['prompts']}",
        f"rl.group_size={s['group_size']}", f"rl.max_new_tokens={s['max_new_tokens']}",
        f"rl.temperature={s['temperature']}", f"rl.top_p={s['top_p']}",
        "rl.probe_parity=false", "rl.eval_every=0", f"rl.save_every={s['steps']}",
        "algo.loss=dapo", "algo.kl=null", "algo.dynamic_sampling=false",
        f"algo.loss.clip_low={s['clip_low']}", f"algo.loss.clip_high={s['clip_high']}",
        f"learner.lr={s['lr']}", "learner.warmup_steps=0", "learner.schedule=constant",
        f"learner.grad_clip={s['grad_clip']}", "learner.dtype=float32",
        # TRL's GRPOConfig checkpoints activations by default; the same here (exact: the
        # recomputed forward gives the same values)
        "learner.gradient_checkpointing=true",
        f"rewards.custom.digits={REWARD}",
    ]  # fmt: skip


def prepare(model: str, s: dict[str, Any], work: Path, seed: int) -> dict[str, Any]:
    """Build the shared start: the sailrl checkpoint and data, the LM exported for TRL, and
    the prompts TRL sees (rendered by sailrl's template, in sailrl's order)."""
    from dataclasses import replace

    from policy.checkpoint import load_checkpoint
    from policy.data import read_examples
    from policy.processor import SAILVLProcessor
    from rl.loop.prompts import PromptStream
    from rl.run.experiment import load_experiment

    run_dir = work / "sailrl-run"
    overrides = sailrl_overrides(model, s, run_dir, seed)
    cfg = load_experiment(CONFIG, overrides)
    cfg = replace(cfg, data=cfg.data.resolve(run_dir))
    model_dir = cfg.model.prepare(run_dir)
    # the colocated side starts from a copy: the same checkpoint and data, its own run
    colocated_dir = work / "sailrl-colocated-run"
    shutil.copytree(run_dir, colocated_dir)
    loaded = load_checkpoint(model_dir)
    lm = work / "lm"
    loaded.model.language_model.save_pretrained(lm)  # a plain Qwen3(Moe)ForCausalLM
    loaded.tokenizer.save_pretrained(lm)
    loaded.model.generation_config.save_pretrained(lm)
    processor = SAILVLProcessor.from_pretrained(model_dir)
    stream = PromptStream(read_examples(cfg.data.train), seed)
    mode = cfg.data.mode
    with (work / "trl_prompts.jsonl").open("w") as fh:
        for _, ex in stream.take(s["steps"] * s["prompts"]):
            m = ex.mode if mode == "as-data" else mode
            text = processor.prompt_text(ex.question, (), m)  # ChatML + assistant header
            row = {"prompt": text, "answer": ex.answer, "mode": m,
                   "data_source": ex.data_source or "", "domain": ex.domain or ""}  # fmt: skip
            fh.write(json.dumps(row) + "\n")
    plan = {"config": str(CONFIG), "sailrl_overrides": overrides, "settings": s, "seed": seed,
            "colocated_run_dir": str(colocated_dir),
            "reward": REWARD, "architecture": type(loaded.model.language_model).__name__}  # fmt: skip
    (work / "plan.json").write_text(json.dumps(plan))
    return plan


def run_side(side: str, work: Path, timeout_s: float) -> dict[str, Any]:
    """Run one side in a fresh process; its numbers plus start-up and peak memory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}  # fmt: skip
    spawned = time.time()
    log = (work / f"{side}.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "rl.bench.trl_sides", side, str(work)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    memory = TreeMemory(proc.pid)
    try:
        code = proc.wait(timeout=timeout_s)
    finally:
        memory.stop()
        log.close()
        if proc.poll() is None:
            proc.kill()
    if code != 0:
        tail = (work / f"{side}.log").read_text()[-3000:]
        raise RuntimeError(f"the {side} side exited with code {code}:\n{tail}")
    out = json.loads((work / f"{side}.json").read_text())
    return {**out, "wall_s": time.time() - spawned,
            "startup_s": out["first_step_start"] - spawned, "peak_rss_mb": memory.peak_mb,
            "peak_processes_mb": memory.top(), "peak_pss_mb": memory.peak_pss_mb,
            "peak_pss_processes_mb": memory.top(pss=True)}  # fmt: skip


def summarize(side: dict[str, Any]) -> dict[str, Any]:
    """Median step and per-phase seconds over the steps after the first (warm-up).

    >>> r = summarize({"step_s": [9.0, 1.0, 3.0, 2.0], "phases_s": [{"g": 5.0}, {"g": 0.5},
    ...               {"g": 1.0}, {"g": 0.7}], "reward": [0.1, 0.2, 0.3, 0.4]})
    >>> r["median_step_s"], r["phases_median_s"]["g"]
    (2.0, 0.7)
    """
    steps = side["step_s"][1:] or side["step_s"]
    phases = side["phases_s"][1:] or side["phases_s"]
    names = list(dict.fromkeys(k for p in phases for k in p))
    return {
        "median_step_s": statistics.median(steps),
        "phases_median_s": {
            k: round(statistics.median(p.get(k, 0.0) for p in phases), 3) for k in names
        },  # fmt: skip
    }


def plot(results: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for ax, (model, r) in zip(axes[0], results.items()):
        for side, style in zip(r["reward_curve"], ("o-", "^:", "s--")):
            curve = r["reward_curve"][side]
            ax.plot(range(1, len(curve) + 1), curve, style, label=side)
        ax.set(title=f"{model}: mean reward per step", xlabel="step", ylabel="reward")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for model in args.models:
        s = settings_for(model, args)
        with tempfile.TemporaryDirectory(prefix=f"trl-bench-{model}-") as tmp:
            work = Path(tmp)
            plan = prepare(model, s, work, args.seed)
            names = [side for side in SIDES if side in args.sides or side == "trl"]
            sides = {side: run_side(side, work, args.timeout_s) for side in names}
        summary = {k: summarize(v) for k, v in sides.items()}
        trl = summary["trl"]["median_step_s"]
        results[model] = {
            "architecture": plan["architecture"],
            "settings": s,
            "median_step_s": {k: round(v["median_step_s"], 3) for k, v in summary.items()},
            # TRL s / sailrl s per sailrl side, and sailrl's memory as a multiple of TRL's
            "step_time_ratio": {
                k: round(trl / summary[k]["median_step_s"], 3) for k in sides if k != "trl"
            },
            "rss_ratio": {
                k: round(sides[k]["peak_rss_mb"] / sides["trl"]["peak_rss_mb"], 2)
                for k in sides
                if k != "trl"
            },
            "phases_median_s": {k: v["phases_median_s"] for k, v in summary.items()},
            "startup_s": {k: round(v["startup_s"], 1) for k, v in sides.items()},
            "wall_s": {k: round(v["wall_s"], 1) for k, v in sides.items()},
            "peak_rss_mb": {k: round(v["peak_rss_mb"]) for k, v in sides.items()},
            "peak_processes_mb": {k: v["peak_processes_mb"] for k, v in sides.items()},
            "peak_pss_mb": {k: round(v["peak_pss_mb"]) for k, v in sides.items()},
            "peak_pss_processes_mb": {k: v["peak_pss_processes_mb"] for k, v in sides.items()},
            "step_s": {k: [round(x, 3) for x in v["step_s"]] for k, v in sides.items()},
            "reward_curve": {
                k: [None if x is None else round(x, 4) for x in v["reward"]]
                for k, v in sides.items()
            },  # fmt: skip
        }
        print_model(model, results[model])
    plot(results, args.png)
    print(f"reward curves: {args.png}")
    return {"bench": "trl", "png": args.png, "seed": args.seed, "models": results}


def print_model(model: str, r: dict[str, Any]) -> None:
    s = r["settings"]
    print(f"\n== {model} ({r['architecture']}): {s['prompts']} prompts x {s['group_size']} "
          f"samples x {s['max_new_tokens']} tokens, {s['steps']} steps, lr {s['lr']:g}")  # fmt: skip
    sides = list(r["median_step_s"])
    print(f"{'':24}" + "".join(f"{side:>18}" for side in sides))
    for label, key in (("median step s", "median_step_s"), ("start-up s", "startup_s"),
                       ("peak RSS MB (all procs)", "peak_rss_mb"),
                       ("peak PSS MB (all procs)", "peak_pss_mb")):  # fmt: skip
        print(f"{label:24}" + "".join(f"{r[key][side]:>18}" for side in sides))
    for side, ratio in r["step_time_ratio"].items():
        print(f"{side}: step time ratio (TRL / it) {ratio}, RSS {r['rss_ratio'][side]}x TRL's")
    for side in sides:
        phases = ", ".join(f"{k} {v:g}" for k, v in r["phases_median_s"][side].items())
        print(f"{side} phases (median s): {phases}")
        print(f"{side} seconds per step: {r['step_s'][side]}")
        print(f"{side} reward per step: {r['reward_curve'][side]}")
