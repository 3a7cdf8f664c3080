"""``sailrl data inspect|convert``: how sailrl reads a data file, and that file in sailrl's
own schema (docs/data.md).

    sailrl data inspect FILE [--model DIR] [--rows N]   last line: one JSON object
    sailrl data convert IN --out OUT.parquet            images embedded as bytes
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import replace

from rl.cli.model_ref import model_dir

_CONTEXT_RUN = re.compile(r"(?:<IMG_CONTEXT>)+")


def register(sub) -> None:
    from rl.cli.data import read_option_args

    parser = sub.add_parser("data", help="inspect or convert a data file (docs/data.md)")
    tools = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    inspect = tools.add_parser(
        "inspect", help="detected format, counts, bad rows, prompt lengths, rendered prompts"
    )
    inspect.add_argument("file", help="data file, directory or glob")
    inspect.add_argument(
        "--model", default=None, type=model_dir, help="checkpoint: render with its template"
    )
    inspect.add_argument("--rows", type=int, default=2, help="rows to render")
    inspect.add_argument("--length-rows", type=int, default=2000,
                         help="rows whose prompt lengths are measured (with --model)")  # fmt: skip
    read_option_args(inspect)
    inspect.set_defaults(func=_inspect)
    convert = tools.add_parser("convert", help="write a file in sailrl's own schema")
    convert.add_argument("file", help="data file, directory or glob")
    convert.add_argument("--out", required=True, help="OUT.parquet (or .jsonl)")
    read_option_args(convert)
    convert.set_defaults(func=_convert)


def _inspect(args: argparse.Namespace) -> int:
    from rl.cli.data import read_options
    from rl.run.prompt_data import load_checked

    # Inspecting reports every bad row instead of stopping at the first one.
    opts = replace(read_options(args), on_bad_row="skip", max_bad_fraction=1.0)
    examples = load_checked(args.file, opts, "FILE")
    report = examples.report
    summary = report.to_dict()
    summary["columns"] = {str(f.path): f.columns for f in examples.files}
    summary["mapping"] = dict(opts.columns)
    print(f"format: {report.format}   mapping: {opts.columns or '(none)'}")
    print(f"rows: {report.rows}   with images: {report.rows_with_images}   "
          f"images: {report.images}   bad rows: {len(report.bad_rows)}")  # fmt: skip
    for bad in report.bad_rows[:20]:
        print(f"  bad: {bad.where}: {bad.reason}")
    processor = None
    if args.model:
        from policy.processor import SAILVLProcessor

        processor = SAILVLProcessor.from_pretrained(args.model)
        lengths = [len(_ids(processor, ex)) for ex in examples[: args.length_rows]]
        if lengths:
            summary["prompt_tokens"] = {"min": min(lengths), "median": statistics.median(lengths),
                                        "max": max(lengths), "rows": len(lengths)}  # fmt: skip
            print(f"prompt tokens (first {len(lengths)} rows): {summary['prompt_tokens']}")
    for i, ex in enumerate(examples[: args.rows]):
        print(f"--- row {i + 1} ({examples.where(i)}): answer={ex.answer!r} mode={ex.mode} "
              f"images={[_describe(im) for im in ex.images]}")  # fmt: skip
        if processor is not None:
            print(_CONTEXT_RUN.sub(lambda m: f"<IMG_CONTEXT>x{m.group(0).count('<')}",
                                   _text(processor, ex)))  # fmt: skip
        else:
            print(json.dumps(ex.question, ensure_ascii=False, indent=1))
        if ex.response:
            print(f"response: {ex.response[:400]!r}")
    print(json.dumps(summary, default=str))
    return 0


def _tiles(processor, ex) -> list[int]:
    from policy.processor import num_tiles

    return [num_tiles(*_size(im), processor.settings) for im in ex.images]


def _size(image) -> tuple[int, int]:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.size
    with Image.open(image) as opened:
        return opened.size


def _text(processor, ex) -> str:
    return processor.prompt_text(ex.question, _tiles(processor, ex), ex.mode)


def _ids(processor, ex) -> list[int]:
    tiles = _tiles(processor, ex)
    return processor.text_ids(processor.prompt_text(ex.question, tiles, ex.mode), tiles)


def _describe(image) -> str:
    from PIL import Image

    if isinstance(image, Image.Image):
        return f"<{image.format or 'image'} {image.size[0]}x{image.size[1]} bytes>"
    return str(image)


def _convert(args: argparse.Namespace) -> int:
    from rl.cli.data import read_options
    from rl.recipe.offline_writer import RowWriter, example_row
    from rl.run.prompt_data import load_checked

    examples = load_checked(args.file, read_options(args), "IN")
    # A conversion is cheap to redo: start over rather than resume an interrupted one.
    RowWriter(args.out).progress.unlink(missing_ok=True)
    writer = RowWriter(args.out, embed_files=True)
    chunk = 1000
    for start in range(0, len(examples), chunk):
        indices = range(start, min(start + chunk, len(examples)))
        writer.write_chunk(indices, [example_row(examples[i]) for i in indices], {})
    out = writer.finish()
    report = examples.report
    print(json.dumps({"out": str(out), "rows": len(examples), "format": report.format,
                      "bad_rows": len(report.bad_rows)}))  # fmt: skip
    return 0
