"""``sailrl rl`` and ``sailrl sft``: one training stage from a YAML file plus dotted
overrides, resumable with ``--resume auto``."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser(
        "rl",
        help="run an RL stage (generate -> score -> train -> sync)",
        description="Run RL on a SAIL-VL2 checkpoint. Example: sailrl rl --config "
        "configs/tiny-rl.yaml rl.steps=20 algo.loss=gspo",
    )
    parser.add_argument("--config", required=True, help="experiment YAML (see docs/config.md)")
    parser.add_argument(
        "--resume",
        default=None,
        help="'auto' (latest checkpoint of the run directory, if any) or a checkpoint dir",
    )
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    parser.set_defaults(func=_rl)

    sft = sub.add_parser(
        "sft",
        help="run an SFT stage (LongCoT or Think-Fusion)",
        description="Supervised fine-tuning on the policy learner. Example: sailrl sft "
        "--config stage.yaml sft.mode=fusion sft.cot_fraction=0.1",
    )
    sft.add_argument("--config", required=True, help="SFT stage YAML (model, run, sft, learner)")
    sft.add_argument("--resume", default=None, help="'auto' or a checkpoint directory")
    sft.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    sft.set_defaults(func=_sft)


def _rl(args: argparse.Namespace) -> int:
    from rl.cluster.session import connect
    from rl.loop.driver import run_rl
    from rl.run.experiment import load_experiment

    cfg = load_experiment(args.config, args.overrides)
    run_dir = run_rl(cfg, resume=args.resume, connect=connect)
    print(f"run directory: {run_dir}")
    return 0


def _sft(args: argparse.Namespace) -> int:
    from rl.recipe.sft_stage import load_sft_experiment, run_sft

    cfg = load_sft_experiment(args.config, args.overrides)
    run_dir = run_sft(cfg, resume=args.resume)
    print(f"run directory: {run_dir}")
    return 0
