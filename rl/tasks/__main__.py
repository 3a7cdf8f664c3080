"""``python -m rl.tasks OUT_DIR``: write the synthetic demo dataset (see ``rl.tasks.dataset``)."""

from __future__ import annotations

import argparse
import json
import sys

from rl.tasks.config import ALL_FAMILIES, DEFAULT_FAMILIES, TaskConfig
from rl.tasks.dataset import write_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl.tasks", description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument(
        "--families", nargs="+", default=list(DEFAULT_FAMILIES), choices=ALL_FAMILIES
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--n-sft-think", type=int, default=200)
    parser.add_argument("--n-sft-direct", type=int, default=200)
    parser.add_argument("--n-rl", type=int, default=200)
    parser.add_argument("--n-eval", type=int, default=50)
    parser.add_argument("--medium-fraction", type=float, default=0.5, help="rest is easy")
    parser.add_argument("--teacher-slip", type=float, default=0.0,
                        help="an imperfect LongCoT teacher (TaskConfig.teacher_slip)")  # fmt: skip
    args = parser.parse_args(argv)
    if not 0.0 <= args.medium_fraction <= 1.0:
        parser.error(f"--medium-fraction must lie in [0, 1], got {args.medium_fraction}")
    try:
        cfg = _config(args)
    except ValueError as err:
        parser.error(str(err))
    manifest = write_dataset(cfg, args.out_dir)
    print(json.dumps({"root": manifest.root, "counts": manifest.counts}))
    return 0


def _config(args: argparse.Namespace) -> TaskConfig:
    return TaskConfig(
        families=args.families,
        seed=args.seed,
        image_size=args.image_size,
        n_sft_think=args.n_sft_think,
        n_sft_direct=args.n_sft_direct,
        n_rl=args.n_rl,
        n_eval=args.n_eval,
        difficulty={"easy": 1.0 - args.medium_fraction, "medium": args.medium_fraction},
        teacher_slip=args.teacher_slip,
    )


if __name__ == "__main__":
    sys.exit(main())
