"""``sailrl bench reward|rollout|rl|trl|data``: each benchmark lives beside the code it measures and
exposes ``add_arguments(parser)`` and ``run(args) -> dict`` (the numbers, printed as JSON)."""

from __future__ import annotations

import importlib
import json

BENCHES = {
    "reward": ("rewards.bench", "reward scoring throughput (samples/s) with process isolation"),
    "rollout": ("rollout.bench", "rollout tokens/s (engine, plain vLLM, HF generate), sync s/GB"),
    "rl": ("rl.bench.rl_step", "one RL step's phase breakdown and tokens/s"),
    "trl": (
        "rl.bench.trl_compare",
        "sailrl vs TRL's GRPOTrainer on the same work: step time, memory",
    ),
    "data": ("policy.data_bench", "start-up time and peak RSS of a 1M-row SFT set"),
}


def register(sub) -> None:
    parser = sub.add_parser("bench", help="benchmarks (speed and memory targets)")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (module_name, help_text) in BENCHES.items():
        bench = benches.add_parser(name, help=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(bench)
        bench.add_argument("--json-out", help="also write the numbers to this JSON file")
        bench.set_defaults(func=_runner(module))


def _runner(module):
    def run(args) -> int:
        result = module.run(args)
        # A bench marked JSON_INLINE ends its output with the numbers on one line.
        indent = None if getattr(module, "JSON_INLINE", False) else 2
        text = json.dumps(result, indent=indent, default=str)
        print(text)
        if args.json_out:
            with open(args.json_out, "w") as fh:
                fh.write(text + "\n")
        return 0

    return run
