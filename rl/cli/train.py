"""``sailrl rl``: one RL stage from a YAML experiment plus dotted overrides."""

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


def _rl(args: argparse.Namespace) -> int:
    from rl.driver import run_rl
    from rl.experiment import load_experiment

    cfg = load_experiment(args.config, args.overrides)
    run_dir = run_rl(cfg, resume=args.resume)
    print(f"run directory: {run_dir}")
    return 0
