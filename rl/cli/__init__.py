"""The ``sailrl`` command. Each command group lives in its own module here and exposes
``register(subparsers)``; handlers import heavy libraries (torch, vLLM, Ray) lazily so that
``sailrl --help`` stays fast.

Errors a user can cause (configuration, data, checkpoints, rewards, an actor that failed for
one of those) print one or two lines and exit 2; ``--debug`` or ``SAILRL_DEBUG=1`` prints
the traceback too. Anything else is a bug: traceback, exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback

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


# Matched by name, so that the CLI need not import torch or Ray to recognise them.
_USER_ERROR_NAMES = {"CheckpointError", "RewardRuntimeError", "ActorFailure"}
_USER_ERRORS = (
    UserError,
    ValueError,  # ConfigError, data rows, UnicodeDecodeError
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
MAX_LINES = 2


def is_user_error(err: BaseException) -> bool:
    return isinstance(err, _USER_ERRORS) or any(
        cls.__name__ in _USER_ERROR_NAMES for cls in type(err).__mro__
    )


def debug_enabled(args: argparse.Namespace | None = None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("SAILRL_DEBUG", "") not in (
        "",
        "0",
    )


def error_text(err: BaseException, debug: bool = False) -> str:
    """``sailrl: error: ...`` in at most two lines (all of it under ``debug``)."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    if isinstance(err, UnicodeDecodeError):
        lines = [f"not UTF-8 text ({err.reason} at byte {err.start}); save the file as UTF-8"]
    if not debug and len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"{lines[MAX_LINES - 1]} ... (--debug shows all)"]
    return "sailrl: error: " + "\n  ".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sailrl",
        description="RL post-training of SAIL-VL2 into its Thinking variants.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="tracebacks for errors (also SAILRL_DEBUG=1)"
    )
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
    debug = debug_enabled(args)
    # SIGTERM unwinds like Ctrl-C (finally blocks and atexit hooks stop actors, remove temp dirs).
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sailrl: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not is_user_error(err):
            raise
        if debug:
            traceback.print_exc()
        print(error_text(err, debug), file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
