"""A procedural task of your own (docs/recipes.md, "Your own task"): sort three numbers.

Writes, into the directory given (default runs/own-task/data):
  sft.jsonl   prompts with a worked thought and the boxed answer (for a short LongCoT SFT)
  rl.jsonl    prompts with reference answers (for RL)
  eval.jsonl  held-out prompts

    python docs/examples/own_task.py runs/own-task/data

The reference is "a, b, c" in ascending order; docs/examples/partial_credit.py scores the
share of positions right, so "1, 7, 4" for "1, 4, 7" earns 1/3.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def example(rng: random.Random) -> dict:
    nums = rng.sample(range(1, 30), 3)
    ordered = ", ".join(str(n) for n in sorted(nums))
    prompt = f"Sort {nums[0]}, {nums[1]} and {nums[2]} from smallest to largest."
    thought = f"smallest {min(nums)}, largest {max(nums)}, so {ordered}"
    return {"prompt": prompt, "answer": ordered, "data_source": "sort3",
            "response": f"<think>{thought}</think>\\boxed{{{ordered}}}"}  # fmt: skip


def write(path: Path, rows: list[dict], keep_response: bool) -> None:
    with path.open("w") as fh:
        for row in rows:
            out = row if keep_response else {k: v for k, v in row.items() if k != "response"}
            fh.write(json.dumps(out) + "\n")


def main(out: str = "runs/own-task/data") -> None:
    rng = random.Random(0)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    write(target / "sft.jsonl", [example(rng) for _ in range(400)], keep_response=True)
    write(target / "rl.jsonl", [example(rng) for _ in range(64)], keep_response=False)
    write(target / "eval.jsonl", [example(rng) for _ in range(32)], keep_response=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
