"""The ``sailrl`` command. Each command group lives in its own module here and exposes
``register(subparsers)``; handlers import heavy libraries (torch, vLLM, Ray) lazily so that
``sailrl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from rl.config import ConfigError

# Order is the order shown in --help.
COMMAND_MODULES = [
    "rl.cli.model",  # sailrl model init|info
    "rl.cli.rollout",  # sailrl rollout generate|parity
    "rl.cli.reward",  # sailrl reward score
    "rl.cli.train",  # sailrl rl / sailrl sft
    "rl.cli.data",  # sailrl eval / sample / filter
    "rl.cli.pipeline",  # sailrl pipeline
    "rl.cli.bench",  # sailrl bench reward|rollout|rl
    "rl.cli.compare",  # sailrl compare RUN_DIR...
]


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sailrl",
        description="RL post-training of SAIL-VL2 into its Thinking variants.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # vLLM logs every engine step at INFO/WARNING; keep the terminal for progress bars.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "DEBUG" if args.verbose else "ERROR")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError, FileNotFoundError) as err:
        print(f"sailrl: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
