"""``sailrl model init|info``: create a randomly initialised checkpoint from a preset, and
show a checkpoint's parameter counts (total and active per token) and main shapes."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    parser = sub.add_parser("model", help="create or inspect SAIL-VL2 checkpoints")
    commands = parser.add_subparsers(dest="model_command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", help="write a randomly initialised checkpoint")
    init.add_argument(
        "--preset", default="tiny", help="tiny, tiny-moe, sailvl2-2b, ... (default tiny)"
    )
    init.add_argument("--out", required=True, help="checkpoint directory to write")
    init.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    init.set_defaults(func=_init)

    info = commands.add_parser("info", help="parameter counts and shapes of a checkpoint")
    info.add_argument("path", help="checkpoint directory")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)


def _init(args: argparse.Namespace) -> int:
    from policy.checkpoint import CheckpointError, init_checkpoint
    from policy.presets import PRESETS
    from rl.cli import UserError

    if args.preset not in PRESETS:
        raise UserError(f"unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}")
    try:
        out = init_checkpoint(args.preset, args.out, seed=args.seed)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    print(f"wrote {args.preset} checkpoint (seed {args.seed}) to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from policy.checkpoint import CheckpointError, load_config
    from policy.params import parameter_summary
    from rl.cli import UserError

    try:
        config = load_config(args.path)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    summary = parameter_summary(config)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"checkpoint: {args.path}")
    print(f"llm: {summary['llm_architecture']}")
    print(f"total parameters:  {summary['total_params']:,}")
    print(f"active parameters: {summary['active_params']:,} (per token)")
    for part, count in summary["by_part"].items():
        print(f"  {part:<16} {count:,}")
    for key, value in summary["shapes"].items():
        print(f"{key}: {value}")
    return 0
