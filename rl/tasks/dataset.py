"""Generation of the demo task splits and writing them as a dataset directory.

    out_dir/
      images/<split>/<family>_<index>.png
      sft_think.jsonl   LongCoT SFT: response = <think> thought </think> + boxed answer
      sft_direct.jsonl  direct SFT: response = the boxed answer only
      rl.jsonl          RL prompts: question + reference answer, no response
      eval.jsonl        held-out prompts (never generated for the other splits)
      manifest.json     config, files and per-split counts

Each JSONL line follows the shared example schema: prompt, images (paths relative to the
file), answer, response (SFT only), mode, data_source, domain; the extra keys family,
difficulty, split, index and thought become ``metadata`` (``policy.data.read_examples``).

    >>> sorted(assign_levels(5, {"easy": 0.5, "medium": 0.5}, random.Random(0)))
    ['easy', 'easy', 'easy', 'medium', 'medium']
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rl.tasks.config import DIFFICULTIES, TaskConfig
from rl.tasks.generators import Task, make_task, teacher_trace
from rl.tasks.render import render

SPLITS: tuple[str, ...] = ("eval", "sft_think", "sft_direct", "rl")
_SPLIT_COUNT = {
    "eval": "n_eval",
    "sft_think": "n_sft_think",
    "sft_direct": "n_sft_direct",
    "rl": "n_rl",
}
# Training splits redraw a problem that collides with a held-out one; past this many tries the
# family's problem space is too small for the requested eval size.
_MAX_REDRAWS = 200


def assign_levels(n: int, weights: dict[str, float], rng: random.Random) -> list[str]:
    """Exactly proportional difficulty labels for ``n`` items (largest remainder), shuffled."""
    levels = [lvl for lvl in DIFFICULTIES if weights.get(lvl, 0) > 0]
    total = sum(weights[lvl] for lvl in levels)
    quotas = [n * weights[lvl] / total for lvl in levels]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(levels)), key=lambda i: (counts[i] - quotas[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    out = [lvl for lvl, c in zip(levels, counts) for _ in range(c)]
    rng.shuffle(out)
    return out


def generate_split(
    cfg: TaskConfig, split: str, exclude: frozenset[str] = frozenset()
) -> list[Task]:
    """The tasks of one split, family by family; keys in ``exclude`` are redrawn.

    The held-out split is also made duplicate-free, so eval accuracy counts distinct problems.
    """
    if split not in _SPLIT_COUNT:
        raise ValueError(f"unknown split {split!r}; choose from {list(_SPLIT_COUNT)}")
    n = getattr(cfg, _SPLIT_COUNT[split])
    tasks: list[Task] = []
    for family in cfg.families:
        levels = assign_levels(n, cfg.difficulty, random.Random(f"{cfg.seed}/{split}/{family}"))
        seen: set[str] = set()
        for index, level in enumerate(levels):
            # A string seed per item keeps each problem independent of the counts of others.
            rng = random.Random(f"{cfg.seed}/{split}/{family}/{index}")
            for _ in range(_MAX_REDRAWS):
                task = make_task(family, level, rng)
                key = task.key()
                if key not in exclude and (split != "eval" or key not in seen):
                    break
            else:
                raise ValueError(
                    f"task family {family!r} at difficulty {level!r} ran out of distinct problems "
                    f"for split {split!r}; lower n_eval ({cfg.n_eval}) or change the difficulty mix"
                )
            seen.add(key)
            tasks.append(task)
    return tasks


def think_response(task: Task) -> str:
    """The LongCoT SFT target: reasoning in think tags, then the boxed answer."""
    return f"<think>\n{task.thought}\n</think>\n\nThe answer is \\boxed{{{task.answer}}}."


def direct_response(task: Task, template: str) -> str:
    """The direct-answer SFT target (``template`` holds ``{answer}``)."""
    return template.format(answer=task.answer)


def task_record(
    task: Task, split: str, index: int, images: list[str], response: str | None, mode: str
) -> dict[str, Any]:
    """One JSONL line of the shared example schema."""
    record: dict[str, Any] = {
        "prompt": task.question,
        "images": images,
        "answer": task.answer,
        "mode": mode,
        "data_source": f"synth_{task.family}",
        "domain": task.domain,
        # Extra keys land in ``Example.metadata`` when read with policy.data.read_examples.
        "family": task.family,
        "difficulty": task.difficulty,
        "split": split,
        "index": index,
        "thought": task.thought,
    }
    if response is not None:
        record["response"] = response
    return record


@dataclass(frozen=True)
class DatasetManifest:
    """Where a written dataset's files are and how many examples each holds."""

    root: str
    files: dict[str, str]
    counts: dict[str, int]
    config: dict[str, Any]

    def path(self, split: str) -> Path:
        return Path(self.root) / self.files[split]


def write_dataset(cfg: TaskConfig, out_dir: str | Path) -> DatasetManifest:
    """Generate every split of ``cfg`` and write PNGs, JSONL files and ``manifest.json``."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    held_out = generate_split(cfg, "eval")
    exclude = frozenset(t.key() for t in held_out)
    files, counts = {}, {}
    for split in SPLITS:
        tasks = held_out if split == "eval" else generate_split(cfg, split, exclude)
        mode = "direct" if split == "sft_direct" else "think"
        lines = []
        per_family: dict[str, int] = {}
        for task in tasks:
            index = per_family.get(task.family, 0)
            per_family[task.family] = index + 1
            images = []
            if task.image is not None:
                rel = f"images/{split}/{task.family}_{index:05d}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                render(task.image, cfg.image_size).save(root / rel)
                images.append(rel)
            teacher = task
            if split == "sft_think" and cfg.teacher_slip:
                slip_rng = random.Random(f"{cfg.seed}/slip/{task.family}/{index}")
                teacher = teacher_trace(task, cfg.teacher_slip, slip_rng)
            response = {
                "sft_think": think_response(teacher),
                "sft_direct": direct_response(task, cfg.direct_template),
            }.get(split)
            record = task_record(task, split, index, images, response, mode)
            if teacher is not task:
                record["thought"] = teacher.thought  # what the response says
            lines.append(json.dumps(record, ensure_ascii=False))
        name = f"{split}.jsonl"
        (root / name).write_text("".join(line + "\n" for line in lines))
        files[split], counts[split] = name, len(lines)
    manifest = DatasetManifest(str(root), files, counts, asdict(cfg))
    (root / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def ensure_dataset(cfg: TaskConfig, out_dir: str | Path) -> Path:
    """``out_dir``, with the dataset of ``cfg`` written there unless it already is (a run
    that resumes reuses the data it started with)."""
    root = Path(out_dir)
    if not (root / "manifest.json").exists():
        write_dataset(cfg, root)
    return root
