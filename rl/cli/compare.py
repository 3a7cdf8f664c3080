"""``sailrl compare RUN_DIR...``: several runs' metrics on the same axes (see rl.recipe.compare)."""

from __future__ import annotations


def register(sub) -> None:
    parser = sub.add_parser(
        "compare", help="plot the metrics of several runs on the same axes; table of final numbers"
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories (or directories of runs, e.g. a pipeline root)")  # fmt: skip
    parser.add_argument("--out", default="compare.png", help="PNG to write")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="metric keys to plot (default: reward, eval accuracy, loss, ...)")  # fmt: skip
    parser.set_defaults(func=_compare)


def _compare(args) -> int:
    from rl.cli import UserError
    from rl.recipe.compare import compare

    try:
        table, _, _ = compare(args.runs, args.out, args.metrics)
    except FileNotFoundError as err:
        raise UserError(str(err)) from err
    print(table)
    print(f"plot: {args.out}")
    return 0
