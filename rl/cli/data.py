"""``sailrl eval|sample|filter``: offline jobs on one checkpoint (see rl.offline), and
``sailrl data inspect|convert``: how sailrl reads a data file (see rl.cli.data_tools)."""

from __future__ import annotations

import argparse
import json

from rl.cli.model_ref import model_dir
from rollout.config import DTYPES


def register(sub) -> None:
    ev = sub.add_parser("eval", help="held-out accuracy and format rate of a checkpoint")
    ev.add_argument("--k", type=int, default=1, help="samples per prompt (accuracy = mean)")
    ev.add_argument("--modes", nargs="+", default=["think", "direct"], choices=["think", "direct"])
    ev.add_argument("--max-prompts", type=int, default=None)
    ev.add_argument("--out", default=None, help="also write the numbers to this JSON file")
    ev.add_argument("--correctness", default="answer",
                    help="reward whose value is the accuracy: a built-in or registered name, "
                    "or package.module:function (e.g. a partial-credit scorer)")  # fmt: skip
    ev.add_argument("--pass-k", type=int, default=0,
                    help="also pass@1 and pass@K from sampled completions (0: off)")  # fmt: skip
    ev.add_argument("--pass-n", type=int, default=None,
                    help="samples per prompt for pass@K (default K; unbiased estimator)")  # fmt: skip
    ev.add_argument("--pass-temperature", type=float, default=1.0)
    ev.add_argument("--pass-modes", nargs="+", default=None, choices=["think", "direct"],
                    help="modes of the pass@K samples (default: --modes)")  # fmt: skip
    ev.add_argument("--records", default=None,
                    help="write per-prompt records (values per sample, family, text) as JSON")  # fmt: skip
    _common(ev, temperature=0.0)
    ev.set_defaults(func=_eval)

    sample = sub.add_parser(
        "sample", help="rejection sampling: best correct, well-formed thinking traces per prompt"
    )
    sample.add_argument("--n", type=int, default=4, help="samples per prompt")
    sample.add_argument("--keep", type=int, default=1, help="traces kept per prompt")
    sample.add_argument(
        "--out",
        required=True,
        help="JSONL (images as files beside it) or parquet (images as bytes) of CoT samples",
    )
    _common(sample, temperature=1.0)
    sample.set_defaults(func=_sample)

    filt = sub.add_parser(
        "filter", help="difficulty filter: pass@k per prompt, drop always/never-solved prompts"
    )
    filt.add_argument("--k", type=int, default=4, help="samples per prompt")
    filt.add_argument("--reasoning-domains", nargs="*", default=["math"],
                      help="domains whose never-solved prompts are dropped too")  # fmt: skip
    filt.add_argument(
        "--out", required=True, help="JSONL or parquet of kept prompts (with pass_rate)"
    )
    _common(filt, temperature=1.0)
    filt.set_defaults(func=_filter)
    for parser in (sample, filt):
        parser.add_argument("--chunk", type=int, default=16,
                            help="prompts per written chunk (a rerun resumes after the last)")  # fmt: skip

    from rl.cli import data_tools

    data_tools.register(sub)


def read_option_args(parser: argparse.ArgumentParser) -> None:
    """--format / --columns / --on-bad-row / --max-bad-fraction (docs/data.md)."""
    parser.add_argument("--format", default=None,
                        choices=["sailrl", "hf-vqa", "verl", "trl", "llava"],
                        help="the file's schema (default: detected from its columns)")  # fmt: skip
    parser.add_argument("--columns", nargs="*", default=[], metavar="KEY=COLUMN",
                        help="map sailrl keys onto the file's columns, e.g. prompt=problem")  # fmt: skip
    parser.add_argument("--on-bad-row", default="error", choices=["error", "skip"])
    parser.add_argument("--max-bad-fraction", type=float, default=0.01)
    parser.add_argument("--image-root", default=None,
                        help="relative image paths start here (default: the data file's dir)")  # fmt: skip


def read_options(args):
    from policy.data import ReadOptions
    from rl.config import ConfigError

    columns = {}
    for item in args.columns:
        key, sep, column = item.partition("=")
        if not sep or not key or not column:
            raise ConfigError(f"--columns: {item!r} is not KEY=COLUMN (e.g. prompt=problem)")
        columns[key] = column
    try:
        return ReadOptions(
            args.format, columns, args.on_bad_row, args.max_bad_fraction, args.image_root
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def _common(parser: argparse.ArgumentParser, temperature: float) -> None:
    parser.add_argument(
        "--model", required=True, type=model_dir, help="SAIL-VL2 checkpoint directory"
    )
    parser.add_argument("--data", required=True, help="JSONL/parquet prompts (docs/data.md)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=temperature)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="auto", choices=DTYPES)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument(
        "--kv-cache-gib",
        type=float,
        default=None,
        help="CPU KV cache GiB (default: what max_num_seqs x max-model-len need, <= 0.5)",
    )
    read_option_args(parser)


def _config(args):
    from rl.offline import OfflineConfig
    from rollout.config import RolloutConfig

    rollout = RolloutConfig(
        dtype=args.dtype, max_model_len=args.max_model_len, kv_cache_gib=args.kv_cache_gib
    )
    return OfflineConfig(
        rollout=rollout, temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
    )


def _eval(args) -> int:
    from dataclasses import replace

    from rl.cli import UserError
    from rl.offline import PassAtK, correctness_rewards, run_eval

    cfg = replace(_config(args), rewards=correctness_rewards(args.correctness))
    pass_at = None
    if args.pass_k:
        try:
            pass_at = PassAtK(args.pass_k, args.pass_n or args.pass_k, args.pass_temperature,
                              args.pass_modes)  # fmt: skip
        except ValueError as err:
            raise UserError(f"--pass-k/--pass-n/--pass-temperature: {err}") from err
    metrics = run_eval(args.model, args.data, cfg, args.modes, args.k, args.max_prompts,
                       read_options(args), pass_at, args.records)  # fmt: skip
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return 0


def _sample(args) -> int:
    from rl.offline import rejection_sample

    stats = rejection_sample(args.model, args.data, args.out, _config(args), args.n, args.keep,
                             args.chunk, read_options(args))  # fmt: skip
    print(json.dumps(stats))
    return 0


def _filter(args) -> int:
    from rl.offline import difficulty_filter

    stats = difficulty_filter(
        args.model, args.data, args.out, _config(args), args.k, args.reasoning_domains,
        args.chunk, read_options(args),
    )  # fmt: skip
    print(json.dumps(stats))
    return 0
