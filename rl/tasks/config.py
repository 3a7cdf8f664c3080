"""Configuration of the synthetic demo tasks (which families, how many, which seed, image size)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Family = Literal[
    "image_arith",
    "count_shapes",
    "bar_chart",
    "text_arith",
    "compare",
    "linear_eq",
    "digit_max",
    "digit_sum",
    "image_digit_max",
]
Difficulty = Literal["easy", "medium", "hard"]

ALL_FAMILIES: tuple[str, ...] = get_args(Family)
# The default mix; the chains of single-digit facts (digit_max, digit_sum, image_digit_max)
# are chosen by name.
DEFAULT_FAMILIES: tuple[str, ...] = tuple(
    f for f in ALL_FAMILIES if f not in ("digit_max", "digit_sum", "image_digit_max")
)
IMAGE_FAMILIES: frozenset[str] = frozenset(
    {"image_arith", "count_shapes", "bar_chart", "image_digit_max"}
)
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
# The families an imperfect teacher writes traces for (rl.tasks.generators.teacher_trace).
SLIP_FAMILIES: frozenset[str] = frozenset({"digit_max", "image_digit_max"})


@dataclass
class TaskConfig:
    """What ``write_dataset`` produces. Counts are per family and per split.

    ``difficulty`` gives the relative weight of each level; levels are assigned by exact
    proportion (largest remainder), not by coin flips, so small datasets keep the mix.
    """

    families: list[Family] = field(default_factory=lambda: list(DEFAULT_FAMILIES))
    seed: int = 0
    image_size: int = 224
    n_sft_think: int = 200
    n_sft_direct: int = 200
    n_rl: int = 200
    n_eval: int = 50
    difficulty: dict[str, float] = field(default_factory=lambda: {"easy": 0.5, "medium": 0.5})
    # An imperfect LongCoT teacher (``rl.tasks.generators.teacher_trace``): in the sft_think
    # split of digit_max / image_digit_max, each step whose next digit is one or two above
    # the running max keeps the old max with this probability. 0: every trace is right.
    teacher_slip: float = 0.0
    # The direct answer format; "{answer}" is replaced. The think format always ends with it.
    direct_template: str = "The answer is \\boxed{{{answer}}}."

    def __post_init__(self) -> None:
        if not self.families:
            raise ValueError("families: list at least one task family")
        unknown = [f for f in self.families if f not in ALL_FAMILIES]
        if unknown:
            raise ValueError(f"families: unknown {unknown}; choose from {list(ALL_FAMILIES)}")
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"families: {self.families} lists a family twice")
        if self.image_size < 64:
            raise ValueError(f"image_size: {self.image_size} is too small to draw on; use >= 64")
        for name in ("n_sft_think", "n_sft_direct", "n_rl", "n_eval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)}")
        bad = [k for k in self.difficulty if k not in DIFFICULTIES]
        if bad:
            raise ValueError(
                f"difficulty: unknown level(s) {bad}; choose from {list(DIFFICULTIES)}"
            )
        weights = list(self.difficulty.values())
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"difficulty: weights must be >= 0 with a positive sum, got {self.difficulty}"
            )
        if not 0.0 <= self.teacher_slip <= 1.0:
            raise ValueError(f"teacher_slip: a probability in [0, 1], got {self.teacher_slip}")
        if self.teacher_slip and not SLIP_FAMILIES & set(self.families):
            raise ValueError(
                f"teacher_slip: only {sorted(SLIP_FAMILIES)} have an imperfect teacher; "
                f"none is in families {self.families}"
            )
        if "{answer}" not in self.direct_template.replace("{{", "").replace("}}", ""):
            raise ValueError("direct_template: must contain '{answer}'")
