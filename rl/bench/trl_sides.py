"""The two sides of ``sailrl bench trl``, each run in its own process by ``rl.bench.trl_compare`` so
that start-up time and memory are measured per system:

    python -m rl.bench.trl_sides sailrl WORK_DIR   # the normal stack: Ray, vLLM, DeepSpeed
    python -m rl.bench.trl_sides sailrl_colocated WORK_DIR   # the same in one process, no Ray
    python -m rl.bench.trl_sides trl WORK_DIR      # TRL's GRPOTrainer, HF generate, CPU

``WORK_DIR/plan.json`` (written by :func:`rl.bench.trl_compare.prepare`) holds the shared settings;
each side writes ``WORK_DIR/<side>.json``: per-step seconds, phase seconds and mean reward,
and the wall-clock time at which the first step began.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

SPAWNED = time.time()


def run_sailrl(work: Path, plan: dict[str, Any], colocate: bool = False) -> dict[str, Any]:
    from rl.cluster.session import connect
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment
    from rl.run.runlog import read_metrics

    overrides = [*plan["sailrl_overrides"], f"ray.colocate={str(colocate).lower()}"]
    if colocate:  # its own run directory, a copy of the shared start (trl_compare.prepare)
        overrides.append(f"run.dir={plan['colocated_run_dir']}")
    cfg = load_experiment(plan["config"], overrides)
    run_dir = run_rl(cfg, connect=connect)
    rows = read_metrics(run_dir)
    # The run log opens (and writes config.yaml) just before the first step; each row's
    # time_s counts from then, at the end of that step.
    opened = (Path(run_dir) / "config.yaml").stat().st_mtime
    first_start = opened + rows[0]["time_s"] - rows[0]["time/step"]
    phases = ("generate", "reward", "train", "sync", "eval", "save")
    return {
        "first_step_start": first_start,
        # eval and checkpoint saves are not part of the work TRL does
        "step_s": [
            r["time/step"] - r.get("time/eval", 0.0) - r.get("time/save", 0.0) for r in rows
        ],
        "phases_s": [{p: r.get(f"time/{p}", 0.0) for p in phases} for r in rows],
        "reward": [r.get("reward/mean") for r in rows],
    }


def trl_reward_fn(path: str):
    """A TRL reward function (``fn(prompts, completions, **columns)``) calling the sailrl
    reward at ``path`` (``fn(completion, answer, metadata)``) in-process, as TRL does."""
    from rewards.registry import load_object

    fn = load_object(path)

    def reward(prompts, completions, answer, mode, **columns):
        out = []
        for i, (completion, ref, m) in enumerate(zip(completions, answer, mode)):
            meta = {k: v[i] for k, v in columns.items() if isinstance(v, list)}
            out.append(float(fn(completion, ref, {**meta, "mode": m})))
        return out

    reward.__name__ = path.rpartition(":")[2]
    return reward


def run_trl(work: Path, plan: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(plan["seed"])
    rows = [json.loads(line) for line in (work / "trl_prompts.jsonl").read_text().splitlines()]
    dataset = Dataset.from_list(rows)
    tokenizer = AutoTokenizer.from_pretrained(work / "lm")
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(work / "lm", dtype=torch.float32)
    s = plan["settings"]
    args = GRPOConfig(
        output_dir=str(work / "trl-out"),
        per_device_train_batch_size=s["prompts"] * s["group_size"],
        num_generations=s["group_size"],
        steps_per_generation=1,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=s["max_new_tokens"],
        temperature=s["temperature"],
        top_p=s["top_p"],
        learning_rate=s["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        adam_beta1=s["betas"][0],
        adam_beta2=s["betas"][1],
        adam_epsilon=s["adam_eps"],
        weight_decay=s["weight_decay"],
        max_grad_norm=s["grad_clip"],
        optim="adamw_torch",
        loss_type="dapo",
        beta=0.0,
        epsilon=s["clip_low"],
        epsilon_high=s["clip_high"],
        scale_rewards="group",
        mask_truncated_completions=False,
        max_steps=s["steps"],
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=plan["seed"],
        shuffle_dataset=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    timing = _TimedTrainer.make(GRPOTrainer)
    steps: list[dict[str, float]] = []
    rewards: list[float | None] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            steps.append({"start": time.time()})

        def on_step_end(self, args, state, control, **kwargs):
            steps[-1]["end"] = time.time()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                rewards.append(float(logs["reward"]))

    trainer = timing(
        model=model,
        reward_funcs=[trl_reward_fn(plan["reward"])],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    trainer.train()
    phases = []
    for i, step in enumerate(steps):
        gen = trainer.phase_s["generate"][i] if i < len(trainer.phase_s["generate"]) else 0.0
        rew = trainer.phase_s["reward"][i] if i < len(trainer.phase_s["reward"]) else 0.0
        prep = trainer.phase_s["rollout"][i] if i < len(trainer.phase_s["rollout"]) else 0.0
        total = step["end"] - step["start"]
        # "train": the optimiser step's forward + backward (everything outside the rollout).
        phases.append({"generate": gen, "reward": rew, "logprob_and_other": prep - gen - rew,
                       "train": total - prep})  # fmt: skip
    return {
        "first_step_start": steps[0]["start"],
        "step_s": [st["end"] - st["start"] for st in steps],
        "phases_s": phases,
        "reward": rewards,
    }


class _TimedTrainer:
    @staticmethod
    def make(base):
        """A subclass of TRL's GRPOTrainer that times its generation, reward and rollout."""

        class Timed(base):
            phase_s = {"generate": [], "reward": [], "rollout": []}

            def _generate(self, prompts):
                t = time.perf_counter()
                out = super()._generate(prompts)
                self.phase_s["generate"].append(time.perf_counter() - t)
                return out

            def _calculate_rewards(self, *a, **k):
                t = time.perf_counter()
                out = super()._calculate_rewards(*a, **k)
                self.phase_s["reward"].append(time.perf_counter() - t)
                return out

            def _generate_and_score_completions(self, *a, **k):
                t = time.perf_counter()
                out = super()._generate_and_score_completions(*a, **k)
                self.phase_s["rollout"].append(time.perf_counter() - t)
                return out

        return Timed


def main(argv: list[str]) -> int:
    side, work = argv[0], Path(argv[1])
    plan = json.loads((work / "plan.json").read_text())
    sides = {
        "sailrl": run_sailrl,
        "sailrl_colocated": lambda w, p: run_sailrl(w, p, colocate=True),
        "trl": run_trl,
    }
    result = sides[side](work, plan)
    result["spawned"] = SPAWNED
    (work / f"{side}.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
