"""``sailrl rollout generate|parity``: sample completions from a checkpoint with vLLM, and
check vLLM's logprobs against policy/'s model (optionally across a weight update)."""

from __future__ import annotations

import argparse
import json
import sys

from rl.cli.model_ref import model_dir
from rollout.config import DTYPES


def register(sub) -> None:
    parser = sub.add_parser("rollout", help="sample with vLLM; check vLLM/policy parity")
    commands = parser.add_subparsers(dest="rollout_command", metavar="COMMAND", required=True)

    gen = commands.add_parser("generate", help="sample completions for a JSONL prompt file")
    gen.add_argument("--model", required=True, type=model_dir, help="checkpoint directory")
    gen.add_argument("--prompts", required=True, help="JSONL file (see docs/rollout.md)")
    gen.add_argument("--out", required=True, help="JSONL file to write, one completion a line")
    gen.add_argument("--n", type=int, default=1, help="samples per prompt (default 1)")
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--max-tokens", type=int, default=256)
    gen.add_argument("--seed", type=int, default=None, help="makes the samples reproducible")
    _engine_arguments(gen)
    gen.set_defaults(func=_generate)

    par = commands.add_parser("parity", help="vLLM logprobs vs policy/ model logprobs (fp32)")
    par.add_argument("--model", required=True, type=model_dir, help="checkpoint directory")
    par.add_argument("--images", action="store_true", help="add prompts with 1 and 2 images")
    par.add_argument(
        "--perturb",
        action="store_true",
        help="also perturb the learner weights, sync them and check again",
    )
    par.add_argument("--n", type=int, default=4, help="samples per prompt (default 4)")
    par.add_argument("--max-tokens", type=int, default=64)
    par.add_argument("--seed", type=int, default=0)
    par.add_argument("--max-model-len", type=int, default=4096)
    par.set_defaults(func=_parity)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", default="auto", choices=DTYPES)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument(
        "--kv-cache-gib",
        type=float,
        default=None,
        help="CPU KV cache GiB (default: what max_num_seqs x max-model-len need, <= 0.5)",
    )


def _generate(args: argparse.Namespace) -> int:
    from rl.cli import UserError
    from rollout.prompt_file import PromptFileError, completion_record, read_prompts
    from rollout.types import SamplingSettings

    try:
        requests = read_prompts(args.prompts)
        sampling = SamplingSettings(
            n=args.n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            seed=args.seed,
        )
    except (PromptFileError, ValueError) as err:
        raise UserError(str(err)) from err
    engine = _engine(
        args, dtype=args.dtype, max_model_len=args.max_model_len, kv_cache_gib=args.kv_cache_gib
    )
    result = engine.generate(requests, sampling)
    with open(args.out, "w", encoding="utf-8") as out:
        for completion in result.completions:
            out.write(json.dumps(completion_record(completion)) + "\n")
    for failure in result.failures:
        print(f"sailrl: prompt failed: {failure.message}", file=sys.stderr)
    print(
        f"wrote {len(result.completions)} completions of "
        f"{len(requests) - len(result.failures)} prompts to {args.out}"
    )
    return 1 if result.failures else 0


def _parity(args: argparse.Namespace) -> int:
    import tempfile

    from policy.checkpoint import checkpoint_tensors, load_checkpoint
    from rollout.parity import compare, parity_requests, perturb_, weight_buckets
    from rollout.types import SamplingSettings

    engine = _engine(args, dtype="float32", max_model_len=args.max_model_len, kv_cache_gib=1.0)
    model = load_checkpoint(args.model).model
    sampling = SamplingSettings(
        n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens, seed=args.seed
    )
    with tempfile.TemporaryDirectory() as image_dir:
        requests = parity_requests(image_dir if args.images else None)
        reports = {"before_update": _check(engine, model, requests, sampling, compare)}
        if args.perturb:
            perturb_(model, scale=0.05, seed=args.seed + 1)
            stats = engine.update_weights(weight_buckets(checkpoint_tensors(model)), version=1)
            reports["after_update"] = _check(engine, model, requests, sampling, compare)
            reports["after_update"]["update_seconds"] = stats.seconds
    tokens = sum(r["n_tokens"] for r in reports.values())
    summary = {
        "max_abs_diff": max(r["max_abs_diff"] for r in reports.values()),
        "mean_abs_diff": sum(r["mean_abs_diff"] * r["n_tokens"] for r in reports.values())
        / max(tokens, 1),
        "n_tokens": tokens,
        **reports,
    }
    print(json.dumps(summary, indent=2))
    engine.shutdown()
    return 0


def _check(engine, model, requests, sampling, compare) -> dict:
    result = engine.generate(requests, sampling)
    return compare(model, engine.processor, requests, result.completions).as_dict()


def _engine(args: argparse.Namespace, **settings):
    from rl.cli import UserError
    from rollout.config import RolloutConfig
    from rollout.engine import RolloutEngine

    try:
        config = RolloutConfig(model=args.model, **settings)
    except ValueError as err:
        raise UserError(str(err)) from err
    return RolloutEngine(config)
