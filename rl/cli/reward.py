"""``sailrl reward score``: score a JSONL file of completions with the reward runtime.

    sailrl reward score --in samples.jsonl --out scored.jsonl [--config rewards.yaml]
        [--set runtime.workers=4 ...]

Each input line holds ``completion``, ``answer``, optionally ``mode`` (think | direct) and
metadata (a ``metadata`` object, or else every other key). Each output line is the input plus
``reward``, ``components``, ``outcome`` (and ``error`` when there is one). A summary goes to
stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BATCH = 2048  # lines scored at once; bounds memory on big files
_CORE_KEYS = ("completion", "answer", "mode")


def register(sub) -> None:
    reward = sub.add_parser("reward", help="score completions with the reward functions")
    commands = reward.add_subparsers(dest="reward_command", metavar="COMMAND", required=True)
    score = commands.add_parser("score", help="score a JSONL file of completions")
    score.add_argument(
        "--in", dest="inp", required=True, help="input JSONL (completion, answer, mode, metadata)"
    )
    score.add_argument(
        "--out", required=True, help="output JSONL (input + reward, components, outcome)"
    )
    score.add_argument(
        "--config", help="rewards YAML (the rewards section, or a file with a 'rewards' key)"
    )
    score.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override of the rewards config, e.g. runtime.timeout_s=10",
    )
    score.set_defaults(func=score_command)


def load_rewards_config(path: str | None, overrides: list[str]):
    """RewardsConfig from YAML (a bare rewards section or one under ``rewards:``) + overrides."""
    from rewards.config import RewardsConfig
    from rl.config import apply_overrides, from_dict, read_yaml

    data = read_yaml(path) if path else {}
    if isinstance(data.get("rewards"), dict):
        data = data["rewards"]
    return from_dict(RewardsConfig, apply_overrides(data, overrides))


def _parse_line(text: str, where: str):
    from rewards.records import RewardInput
    from rl.cli import UserError

    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: each line must be a JSON object")
    for key in ("completion", "answer"):
        if key not in row:
            raise UserError(f"{where}: missing {key!r}")
    if not isinstance(row["completion"], str):
        raise UserError(f"{where}: 'completion' must be a string")
    metadata = row.get("metadata")
    if metadata is None:
        metadata = {k: v for k, v in row.items() if k not in _CORE_KEYS}
    if not isinstance(metadata, dict):
        raise UserError(f"{where}: 'metadata' must be an object")
    answer = row["answer"] if isinstance(row["answer"], str) else json.dumps(row["answer"])
    try:
        prompt = row.get("prompt") if isinstance(row.get("prompt"), str) else ""
        item = RewardInput(
            row["completion"], answer, mode=row.get("mode", "think"), metadata=metadata,
            prompt=prompt,  # what a TRL-style reward gets as `prompts`
        )  # fmt: skip
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None
    return row, item


def _batches(path: Path):
    rows, items = [], []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            row, item = _parse_line(text, f"{path}:{number}")
            rows.append(row)
            items.append(item)
            if len(items) == BATCH:
                yield rows, items
                rows, items = [], []
    if items:
        yield rows, items


def score_command(args) -> int:
    from rewards import ErrorRateExceeded, RewardRuntime, RewardRuntimeError
    from rl.cli import UserError

    # As with `python -m`, reward modules in the current directory can be named in `custom`.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    inp, out = Path(args.inp), Path(args.out)
    if not inp.is_file():
        raise FileNotFoundError(f"input file {inp} does not exist")
    config = load_rewards_config(args.config, args.overrides)
    try:
        runtime = RewardRuntime(config)
    except ValueError as err:
        raise UserError(f"{args.config or 'rewards config'}: {err}") from None
    with runtime, out.open("w", encoding="utf-8") as sink:
        for rows, items in _batches(inp):
            try:
                results = runtime.score(items)
            except ErrorRateExceeded as err:
                _write(sink, rows, err.results)
                raise UserError(f"{err} (scored lines so far are in {out})") from None
            except RewardRuntimeError as err:
                raise UserError(str(err)) from None
            _write(sink, rows, results)
        summary = runtime.stats.as_dict()
    print(f"sailrl reward score: {json.dumps(summary)}", file=sys.stderr)
    return 0


def _write(sink, rows, results) -> None:
    for row, result in zip(rows, results):
        row = {
            **row,
            "reward": result.reward,
            "components": result.components,
            "outcome": result.outcome,
        }
        if result.error:
            row["error"] = result.error
        sink.write(json.dumps(row, ensure_ascii=True) + "\n")
