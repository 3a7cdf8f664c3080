"""``sailrl model init|info|check|export``: create a randomly initialised checkpoint from a
preset; show a checkpoint's parameter counts (total and active per token, tied weights once)
and main shapes; check that a checkpoint (e.g. a published SAIL-VL2 one) loads for training
and rollout; export a checkpoint in its source layout."""

from __future__ import annotations

import argparse
import json

from policy.vocab import MODES
from rl.cli.model_ref import model_dir


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
    info.add_argument("path", type=model_dir, help="checkpoint directory (or a reference)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_info)

    check = commands.add_parser(
        "check", help="load a checkpoint as training and rollout will; JSON report last"
    )
    check.add_argument("path", type=model_dir, help="checkpoint directory (or a reference)")
    check.add_argument("--prompt", default=None, help="render (and run) this user prompt")
    check.add_argument("--image", default=None, help="an image for --prompt")
    check.add_argument("--mode", default="direct", choices=MODES)
    check.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    check.set_defaults(func=_check)

    export = commands.add_parser(
        "export", help="save a checkpoint in its source layout (what upstream code loads)"
    )
    export.add_argument(
        "src", type=model_dir, help="checkpoint directory (or a reference) to export"
    )
    export.add_argument("--out", required=True, help="new directory to write")
    export.set_defaults(func=_export)


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
    tied = " (lm_head tied to the embeddings, counted once)" if summary["tied_lm_head"] else ""
    print(f"total parameters:  {summary['total_params']:,}{tied}")
    print(f"active parameters: {summary['active_params']:,} (per token)")
    for part, count in summary["by_part"].items():
        print(f"  {part:<16} {count:,}")
    for key, value in summary["shapes"].items():
        print(f"{key}: {value}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from policy.checkpoint import CheckpointError
    from policy.source_layout import SourceLayoutError
    from rl.cli import UserError
    from rl.cli.model_check import check_checkpoint

    try:
        report = check_checkpoint(
            args.path, prompt=args.prompt, image=args.image, mode=args.mode, dtype=args.dtype
        )
    except (CheckpointError, SourceLayoutError, FileNotFoundError, ValueError, KeyError) as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        print(json.dumps({"ok": False, "path": args.path, "error": message}))
        raise UserError(message) from err
    print(f"checkpoint: {report['path']} loads ({report['llm_architecture']})")
    print(f"chat template: {report['chat_template']}")
    print(f"<IMG_CONTEXT> id: {report['image_context_token_id']}")
    print(
        f"parameters: {report['params_total']:,} unique"
        + (" (lm_head tied to the embeddings)" if report["tied_lm_head"] else "")
    )
    print(
        f"weights: {report['weight_files']} file(s), {', '.join(report['weight_dtypes'])}; "
        f"vLLM loads {report['vllm_weights']} of them"
    )
    print(f"attention: {report['attn_implementation']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    if report["prompt_text"] is not None:
        print(f"prompt ({report['prompt_tokens']} tokens):\n{report['prompt_text']}")
    print(json.dumps(report))
    return 0


def _export(args: argparse.Namespace) -> int:
    from policy.checkpoint import CheckpointError
    from policy.source_layout import SourceLayoutError, export_checkpoint
    from rl.cli import UserError

    try:
        out = export_checkpoint(args.src, args.out)
    except (CheckpointError, SourceLayoutError, FileExistsError, ValueError) as err:
        raise UserError(str(err)) from err
    print(f"exported {args.src} to {out} (config keys, files, weight names, dtype, shards kept)")
    return 0
