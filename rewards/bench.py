"""``sailrl bench reward``: reward scoring throughput (samples/s) with process isolation.

Builds synthetic but realistic completions (a ~4,000-character thought, then a boxed answer;
answers are integers, decimals, fractions, LaTeX expressions, equations, sets, intervals,
multiple-choice letters and short text, right about half the time, some badly formatted) and
scores them with the answer + format rewards.
"""

from __future__ import annotations

import argparse
import random
import time


def _answer_kinds(rng: random.Random) -> list[tuple[str, str, str]]:
    """Fresh (reference, a correct spelling, a wrong one) per kind, with random numbers so
    that parse caches only help the way they would on real data."""
    a, b, c = rng.randint(2, 999), rng.randint(2, 99), rng.randint(2, 9)
    return [
        (str(a), str(a), str(a + 1)),
        (f"{c}/{b + c}", f"\\frac{{{c}}}{{{b + c}}}", f"\\frac{{{c}}}{{{b + c + 1}}}"),
        (f"{a}.25", f"\\dfrac{{{4 * a + 1}}}{{4}}", f"{a}.2"),
        (str(b), f"{b}.0", str(b - 1)),
        (f"{b}\\%", f"{b}\\%", f"{b + 1}\\%"),
        (str(c), f"x={c}", f"x={c + 1}"),
        (f"\\sqrt{{{b}}}", f"\\sqrt{{{b}}}", f"\\sqrt{{{b + 1}}}"),
        (f"{c}\\pi", f"{c}\\pi", f"{c + 1}\\pi"),
        (f"x^2+{2 * c}x+{c * c}", f"(x+{c})^2", f"x^2+{c * c}"),
        (f"\\{{1,{c}\\}}", f"\\{{{c},1\\}}", f"\\{{1,{c + 1}\\}}"),
        (f"[0,{c})", f"[0,{c})", f"(0,{c}]"),
        (rng.choice("ABCD"), "", "E"),
        ("Paris", "paris", "Lyon"),
        (f"{a},000", f"{a}000", f"{a}00"),
        (f"-{b}", f"-{b}", str(b)),
        (f"\\frac{{\\sqrt{{{c}}}}}{{2}}", f"\\frac{{\\sqrt{{{c}}}}}{{2}}", "\\frac{1}{2}"),
    ]


# How often each answer kind appears: plain numbers dominate STEM RL data.
ANSWER_WEIGHTS = [14, 6, 3, 6, 2, 3, 3, 2, 2, 1, 1, 6, 2, 3, 4, 2]
GROUP_SIZE = 8  # samples per prompt (GRPO group): references repeat, predictions vary
WORDS = [
    "so",
    "the",
    "area",
    "is",
    "then",
    "we",
    "compute",
    "the",
    "sum",
    "of",
    "both",
    "sides",
    "which",
    "gives",
    "us",
    "a",
    "value",
    "let",
    "x",
    "be",
    "the",
    "unknown",
    "and",
    "substitute",
    "into",
    "the",
    "equation",
    "checking",
    "each",
    "case",
    "carefully",
    "because",
    "the",
    "triangle",
    "has",
    "sides",
    "3",
    "4",
    "5",
    "and",
    "the",
    "angle",
    "at",
    "the",
    "vertex",
    "is",
    "right",
    "therefore",
]


def make_prompt(rng: random.Random) -> tuple[str, str, str]:
    """(reference, a correct spelling, a wrong one) of one synthetic prompt."""
    ref, right, wrong = rng.choices(_answer_kinds(rng), weights=ANSWER_WEIGHTS)[0]
    return ref, right or f"({ref})", wrong


def make_completion(
    rng: random.Random, prompt: tuple[str, str, str], reasoning_chars: int
) -> tuple[str, str, str]:
    """One (completion, reference, mode) triple; mostly well formed, about half correct."""
    ref, right, wrong = prompt
    words: list[str] = []
    size = 0
    while size < reasoning_chars:
        word = rng.choice(WORDS)
        if rng.random() < 0.05:
            word = f"${rng.randint(1, 99)}+{rng.randint(1, 99)}={rng.randint(2, 198)}$"
        words.append(word)
        size += len(word) + 1
    thought = " ".join(words)
    final = right if rng.random() < 0.5 else wrong
    shape = rng.random()
    if shape < 0.85:
        return f"<think>{thought}</think>\nThe answer is \\boxed{{{final}}}.", ref, "think"
    if shape < 0.92:
        return f"<think>{thought} so \\boxed{{{final}}}</think> done.", ref, "think"
    if shape < 0.96:
        return f"{thought}\nThe answer is \\boxed{{{final}}}.", ref, "direct"
    return f"<think>{thought}</think>\nI think it is {final}.", ref, "think"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--reasoning-chars", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--start-method", choices=["forkserver", "spawn"], default="forkserver")
    parser.add_argument("--no-isolation", action="store_true", help="score in this process")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    from rewards import RewardInput, RewardRuntime, RewardsConfig, RuntimeConfig

    rng = random.Random(args.seed)
    batch = []
    while len(batch) < args.samples:
        prompt = make_prompt(rng)
        for _ in range(min(GROUP_SIZE, args.samples - len(batch))):
            completion, answer, mode = make_completion(rng, prompt, args.reasoning_chars)
            batch.append(RewardInput(completion, answer, mode=mode))
    config = RewardsConfig(
        runtime=RuntimeConfig(
            isolation=not args.no_isolation,
            workers=args.workers,
            chunk_size=args.chunk_size,
            timeout_s=args.timeout_s,
            start_method=args.start_method,
        )
    )
    t0 = time.perf_counter()
    with RewardRuntime(config) as runtime:
        startup = time.perf_counter() - t0
        runtime.score(batch[: min(64, len(batch))])  # warm-up: workers ready, caches primed
        results = runtime.score(batch)
        stats = runtime.last_stats
    chars = sum(len(item.completion) for item in batch) / max(1, len(batch))
    return {
        "samples": stats.samples,
        "samples_per_s": round(stats.samples_per_s, 1),
        "seconds": round(stats.seconds, 3),
        "startup_s": round(startup, 3),
        "isolation": not args.no_isolation,
        "workers": args.workers,
        "start_method": args.start_method,
        "mean_completion_chars": round(chars),
        "mean_reward": round(stats.mean_reward, 4),
        "outcomes": stats.outcomes,
        "worker_restarts": stats.worker_restarts,
        "correct_fraction": round(
            sum(r.components.get("answer", 0.0) for r in results) / max(1, len(results)), 4
        ),
    }
