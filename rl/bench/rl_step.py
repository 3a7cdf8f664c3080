"""``sailrl bench rl``: one RL step's phase breakdown and throughput, through the real stack
(Ray actors, vLLM engine, DeepSpeed learner, reward pool; ``--colocate``: the same in one
process without Ray), for a tiny model and the ~106M ``small`` preset. Runs
``configs/tiny-rl.yaml`` for a few steps and reports the last one (the first pays for
warm-up)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny-rl.yaml"
PHASES = ("generate", "reward", "train", "sync", "eval", "save", "step")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=["tiny", "small"],
                        help="model presets (default: tiny and the ~106M small)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=3, help="steps per model (last reported)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--weight-transfer", default="auto",
                        choices=["auto", "local", "nccl", "gloo"],
                        help="how weights reach the engine (rollout.weight_transfer)")  # fmt: skip
    parser.add_argument("--colocate", action="store_true",
                        help="one process without Ray (ray.colocate=true)")  # fmt: skip


def step_report(row: dict[str, Any], samples: int) -> dict[str, Any]:
    """Phase seconds and tokens/s of one metrics row.

    >>> r = step_report({"time/generate": 2.0, "time/train": 1.0, "time/step": 4.0,
    ...                  "response/length_mean": 10.0, "train/tokens_per_s": 500.0,
    ...                  "sync/bytes": 4e8, "time/sync": 0.5}, 8)
    >>> r["generate_tokens_per_s"], r["seconds"]["train"], r["sync_seconds_per_gb"]
    (40.0, 1.0, 1.25)
    """
    seconds = {p: round(row.get(f"time/{p}", 0.0), 3) for p in PHASES}
    generated = row.get("response/length_mean", 0.0) * samples
    gen_time = row.get("time/generate", 0.0)
    sync_gb = row.get("sync/bytes", 0.0) / 1e9
    return {
        "seconds": seconds,
        "generated_tokens": generated,
        "generate_tokens_per_s": round(generated / gen_time, 1) if gen_time else None,
        "train_tokens_per_s": round(row.get("train/tokens_per_s", 0.0), 1),
        "step_tokens_per_s": round(generated / row["time/step"], 1)
        if row.get("time/step")
        else None,
        "sync_gb": round(sync_gb, 4),
        # the whole sync phase (export, transfer, load) per GB of weights
        "sync_seconds_per_gb": round(row["time/sync"] / sync_gb, 3) if sync_gb else None,
        # rl.cluster.meter: what the driver sent/received through Ray, and its CPU seconds
        "ray_bytes": {k[4:]: int(v) for k, v in row.items() if k.startswith("ray/")},
        "driver_cpu_s": round(row.get("driver/cpu_s", 0.0), 3),
        "meter_overhead_s": round(row.get("driver/meter_s", 0.0), 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from policy.checkpoint import load_config
    from policy.params import parameter_summary
    from rl.bench.learner_report import TreeMemory, learner_report, memory_report
    from rl.cluster.meter import RayMeter
    from rl.cluster.session import connect, stop_ray
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment
    from rl.run.runlog import RunLog, read_metrics

    results: dict[str, Any] = {}
    meter = RayMeter()
    if not args.colocate:  # a colocated run has no Ray traffic to count
        meter.install()
    log_step = RunLog.log  # each logged step gets the meter's counters since the last one
    RunLog.log = lambda runlog, step, metrics: log_step(runlog, step, {**metrics, **meter.take()})
    try:
        for preset in args.models:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_experiment(CONFIG, [
                    f"model.preset={preset}", f"run.dir={tmp}", f"rl.steps={args.steps}",
                    f"rl.prompts_per_step={args.prompts}", f"rl.group_size={args.group_size}",
                    f"rl.max_new_tokens={args.max_new_tokens}", "rl.probe_parity=false",
                    "algo.dynamic_sampling=false", "learner.lr=1e-5",
                    f"rollout.weight_transfer={args.weight_transfer}",
                    f"ray.colocate={str(args.colocate).lower()}",
                ])  # fmt: skip
                memory = TreeMemory(os.getpid())
                meter.take()  # counting starts here: step 1 also carries the start-up
                try:
                    run_rl(cfg, connect=connect)
                finally:
                    memory.stop()
                rows = read_metrics(tmp)
                last = rows[-1]
                params = parameter_summary(load_config(Path(tmp) / "init-model"))
                learner = learner_report(last, Path(tmp) / "init-model")
            results[preset] = {
                "params": params["total_params"],
                **step_report(last, args.prompts * args.group_size),
                "learner": learner,
                "memory": memory_report(memory),
                "step_seconds": [round(r["time/step"], 3) for r in rows],
                "driver_cpu_s_per_step": [round(r["driver/cpu_s"], 3) for r in rows],
            }
    finally:
        meter.uninstall()
        RunLog.log = log_step
        stop_ray()
    return {"bench": "rl", "prompts_per_step": args.prompts, "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens, "weight_transfer": args.weight_transfer,
            "colocate": args.colocate, "models": results}  # fmt: skip
