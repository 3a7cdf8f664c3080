"""``sailrl pipeline``: LongCoT SFT -> RLVR -> rejection sampling -> Think-Fusion SFT -> RL
with mixed rewards, then report.md / report.json (see rl.recipe.pipeline)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser(
        "pipeline",
        help="run the whole Thinking recipe (resumable; finished stages are skipped)",
        description="Example: sailrl pipeline --config configs/demo.yaml run.dir=runs/demo2",
    )
    parser.add_argument("--config", required=True, help="recipe YAML (configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides")
    parser.set_defaults(func=_pipeline)


def _pipeline(args: argparse.Namespace) -> int:
    import json

    from rl.recipe.pipeline import Pipeline, load_pipeline

    cfg = load_pipeline(args.config, args.overrides)
    pipeline = Pipeline(cfg)
    pipeline.run()
    report = pipeline.root / "report.json"
    if report.exists():
        print(f"report: {pipeline.root / 'report.md'}")
        print(json.dumps(json.loads(report.read_text())["stages"], indent=1)[:4000])
    return 0
