"""Verifiable demo problems: each generator turns a seeded RNG and a difficulty into a ``Task``.

A task carries the question, the reference answer (a small integer as text), a short
deterministic step-by-step thought (the LongCoT SFT target) and, for the image families, a
drawable spec. Everything is a pure function of the RNG state, so a dataset is a pure function
of its seed.

    >>> import random
    >>> t = make_task("linear_eq", "medium", random.Random(3))
    >>> t.question.startswith("Solve for x:"), t.answer.isdigit()
    (True, True)
    >>> make_task("linear_eq", "medium", random.Random(3)) == t
    True
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from rl.tasks.config import SLIP_FAMILIES
from rl.tasks.render import COLORS, BarChart, ImageSpec, Shape, ShapesImage, TextImage


@dataclass(frozen=True)
class Task:
    """One problem with its reference answer and reasoning trace."""

    family: str
    difficulty: str
    domain: str
    question: str
    answer: str
    thought: str
    image: ImageSpec | None = None

    def key(self) -> str:
        """Identity used to keep held-out eval problems out of the training splits."""
        return f"{self.family}|{self.question}|{self.image!r}"


# ---------------------------------------------------------------- arithmetic expressions


def _expression(rng: random.Random, difficulty: str) -> tuple[str, int, str]:
    """(expression text, value, thought) with a non-negative integer value."""
    r = rng.randint
    if difficulty == "easy":
        a, b = r(1, 9), r(1, 9)
        if rng.random() < 0.5:
            return f"{a} + {b}", a + b, f"{a}+{b} = {a + b}."
        a, b = max(a, b), min(a, b)
        return f"{a} - {b}", a - b, f"{a}-{b} = {a - b}."
    if difficulty == "medium":
        a, b, c = r(2, 9), r(2, 9), r(1, 9)
        p = a * b
        if rng.random() < 0.5:
            return f"{a} * {b} + {c}", p + c, f"{a}*{b} = {p}. {p}+{c} = {p + c}."
        return f"{c} + {a} * {b}", c + p, f"{a}*{b} = {p}. {c}+{p} = {c + p}."
    a, b, c, d = r(2, 9), r(2, 9), r(2, 9), r(1, 9)
    if rng.random() < 0.5:
        s = a + b
        return f"({a} + {b}) * {c}", s * c, f"{a}+{b} = {s}. {s}*{c} = {s * c}."
    p, q = a * b, c * d
    if p < q:
        a, b, c, d, p, q = c, d, a, b, q, p
    return (
        f"{a} * {b} - {c} * {d}",
        p - q,
        f"{a}*{b} = {p}. {c}*{d} = {q}. {p}-{q} = {p - q}.",
    )


def image_arith(rng: random.Random, difficulty: str) -> Task:
    text, value, thought = _expression(rng, difficulty)
    return Task(
        "image_arith",
        difficulty,
        "math",
        "What is the result of the expression in the image?",
        str(value),
        f"The image shows {text}. {thought}",
        TextImage((text,)),
    )


def text_arith(rng: random.Random, difficulty: str) -> Task:
    text, value, thought = _expression(rng, difficulty)
    return Task("text_arith", difficulty, "math", f"What is {text}?", str(value), thought)


# ---------------------------------------------------------------- comparisons


def compare(rng: random.Random, difficulty: str) -> Task:
    r = rng.randint
    if difficulty == "easy":
        a, b = rng.sample(range(1, 51), 2)
        hi, lo = max(a, b), min(a, b)
        q = f"Which is larger, {a} or {b}?"
        return Task("compare", difficulty, "math", q, str(hi), f"{hi} > {lo}, so {hi}.")
    if difficulty == "medium":
        nums = rng.sample(range(1, 100), 3)
        order = sorted(nums, reverse=True)
        q = f"What is the largest of {nums[0]}, {nums[1]} and {nums[2]}?"
        thought = f"{order[0]} > {order[1]} > {order[2]}, so {order[0]}."
        return Task("compare", difficulty, "math", q, str(order[0]), thought)
    while True:
        a, b, c, d = r(2, 9), r(2, 9), r(2, 9), r(2, 9)
        if a * b != c * d:
            break
    p, q_ = a * b, c * d
    hi = max(p, q_)
    q = f"Which is larger, {a} * {b} or {c} * {d}? Give its value."
    thought = f"{a}*{b} = {p}. {c}*{d} = {q_}. {max(p, q_)} > {min(p, q_)}, so {hi}."
    return Task("compare", difficulty, "math", q, str(hi), thought)


# ---------------------------------------------------------------- linear equations


def linear_eq(rng: random.Random, difficulty: str) -> Task:
    r = rng.randint
    if difficulty == "easy":
        x, b = r(1, 9), r(1, 9)
        c = x + b
        q = f"Solve for x: x + {b} = {c}"
        return Task("linear_eq", difficulty, "math", q, str(x), f"x = {c}-{b} = {x}.")
    if difficulty == "medium":
        x, a, b = r(1, 9), r(2, 9), r(1, 9)
        c = a * x + b
        q = f"Solve for x: {a}x + {b} = {c}"
        thought = f"{a}x = {c}-{b} = {c - b}. x = {c - b}/{a} = {x}."
        return Task("linear_eq", difficulty, "math", q, str(x), thought)
    x, d = r(1, 9), r(1, 6)
    c = r(1, 5)
    a = c + d
    b = r(1, 9)
    e = a * x + b - c * x
    cx = "x" if c == 1 else f"{c}x"
    q = f"Solve for x: {a}x + {b} = {cx} + {e}"
    if d == 1:
        thought = f"{a}x-{cx} = {e}-{b}. x = {e - b}."
    else:
        thought = f"{a}x-{cx} = {e}-{b}. {d}x = {e - b}. x = {e - b}/{d} = {x}."
    return Task("linear_eq", difficulty, "math", q, str(x), thought)


# ---------------------------------------------------------------- digit chains
# Problems built from a few single-digit facts, step by step: held-out problems are new
# sequences of the same facts the training problems use, so what a small model learns of
# those facts (in SFT, or from the reward in RL) carries over. 3 digits easy, 4 medium, 5 hard.

_CHAIN_LEN = {"easy": 3, "medium": 4, "hard": 5}
_NEAR_MISS = (1, 2)  # how far above the running max a digit the teacher can miss lies


def _max_steps(
    digits: list[int], slip: float = 0.0, rng: random.Random | None = None
) -> tuple[int, str]:
    """(the chain's result, one ``max a b = c.`` step per digit after the first). With
    ``slip`` > 0, each step whose digit is one or two above the running max (a near miss)
    keeps the old max with that probability (``rng`` draws it), an error carried on."""
    steps, best = [], digits[0]
    for d in digits[1:]:
        new = max(best, d)
        if slip and d - best in _NEAR_MISS and rng is not None and rng.random() < slip:
            new = best
        steps.append(f"max {best} {d} = {new}.")
        best = new
    return best, " ".join(steps)


def _max_chain(rng: random.Random, difficulty: str) -> tuple[str, int, str]:
    """(digits as text, largest digit, one ``max a b = c.`` step per digit after the first)."""
    # The largest digit is drawn first (uniform on 3..9) and placed anywhere: with all digits
    # uniform, "9" would be the answer of ~40% of 4-digit problems, a prior, not a skill.
    n = _CHAIN_LEN[difficulty]
    top = rng.randint(3, 9)
    digits = [rng.randint(1, top) for _ in range(n - 1)]
    digits.insert(rng.randrange(n), top)
    best, thought = _max_steps(digits)
    return " ".join(map(str, digits)), best, thought


def digit_max(rng: random.Random, difficulty: str) -> Task:
    digits, best, thought = _max_chain(rng, difficulty)
    q = f"What is the largest digit in {digits}?"
    return Task("digit_max", difficulty, "math", q, str(best), thought)


def image_digit_max(rng: random.Random, difficulty: str) -> Task:
    # The same facts as digit_max, read from the image first: the visual path trains on a
    # problem whose reasoning part the text family shares.
    digits, best, thought = _max_chain(rng, difficulty)
    q = "What is the largest digit in the image?"
    return Task(
        "image_digit_max",
        difficulty,
        "math",
        q,
        str(best),
        f"The image shows {digits}. {thought}",
        TextImage((digits,)),
    )


def digit_sum(rng: random.Random, difficulty: str) -> Task:
    digits = [rng.randint(1, 9) for _ in range(_CHAIN_LEN[difficulty])]
    steps, total = [], digits[0]
    for d in digits[1:]:
        steps.append(f"{total}+{d} = {total + d}.")
        total += d
    q = f"What is {' + '.join(map(str, digits))}?"
    return Task("digit_sum", difficulty, "math", q, str(total), " ".join(steps))


def teacher_trace(task: Task, slip: float, rng: random.Random) -> Task:
    """``task`` as an imperfect teacher writes its LongCoT trace: at each step where the next
    digit is one or two above the running max, the teacher keeps the old max with
    probability ``slip``, and its trace ends in the answer that error leads to. Other
    families, and ``slip`` 0, come back unchanged. Only the SFT target changes: rewards and
    held-out problems keep the true answer, so RL can learn past the teacher."""
    if slip <= 0 or task.family not in SLIP_FAMILIES:
        return task
    shown = task.image.lines[0] if isinstance(task.image, TextImage) else task.question
    digits = [int(d) for d in re.findall(r"\d", shown)]
    best, steps = _max_steps(digits, slip, rng)
    read = task.thought[: task.thought.index("max ")]  # "The image shows ...", or ""
    return replace(task, answer=str(best), thought=read + steps)


# ---------------------------------------------------------------- counting shapes

_KINDS = ("circle", "square", "triangle")
_COLOR_NAMES = tuple(COLORS)
# easy: 3x3 grid, 1-3 targets, distractors differ in both colour and kind;
# medium: 4x4, 1-5 targets, distractors share colour or kind; hard: 4x4, 2-7, more distractors.
_COUNT_LEVELS = {
    "easy": (3, (1, 3), (1, 3), False),
    "medium": (4, (1, 5), (2, 6), True),
    "hard": (4, (2, 7), (4, 8), True),
}


def count_shapes(rng: random.Random, difficulty: str) -> Task:
    grid, (tlo, thi), (dlo, dhi), confusable = _COUNT_LEVELS[difficulty]
    color = rng.choice(sorted(_COLOR_NAMES))
    kind = rng.choice(_KINDS)
    n_target = rng.randint(tlo, thi)
    n_distract = min(rng.randint(dlo, dhi), grid * grid - n_target)
    cells = rng.sample(range(grid * grid), n_target + n_distract)
    other_colors = [c for c in sorted(_COLOR_NAMES) if c != color]
    other_kinds = [k for k in _KINDS if k != kind]
    shapes, positions = [], []
    for i, cell in enumerate(cells):
        row, col = divmod(cell, grid)
        if i < n_target:
            s_color, s_kind = color, kind
            positions.append((row + 1, col + 1))
        elif confusable and rng.random() < 0.5:
            s_color, s_kind = color, rng.choice(other_kinds)
        elif confusable:
            s_color, s_kind = rng.choice(other_colors), kind
        else:
            s_color, s_kind = rng.choice(other_colors), rng.choice(other_kinds)
        # Jitter inside the cell keeps shapes apart while avoiding a fixed lattice.
        r = 0.28 / grid
        cx = (col + 0.5 + rng.uniform(-0.15, 0.15)) / grid
        cy = (row + 0.5 + rng.uniform(-0.15, 0.15)) / grid
        shapes.append(Shape(s_kind, s_color, round(cx, 4), round(cy, 4), round(r, 4)))
    positions.sort()
    where = ", ".join(f"({r},{c})" for r, c in positions)
    thought = f"{color.capitalize()} {kind}s at row,col {where}. That is {n_target}."
    q = f"How many {color} {kind}s are in the image?"
    # Draw order is shuffled so the targets are not always painted first.
    order = rng.sample(range(len(shapes)), len(shapes))
    image = ShapesImage(tuple(shapes[i] for i in order))
    return Task("count_shapes", difficulty, "counting", q, str(n_target), thought, image)


# ---------------------------------------------------------------- bar charts

_LETTERS = "ABCDEFGH"


def bar_chart(rng: random.Random, difficulty: str) -> Task:
    if difficulty == "easy":
        n, vmax, show = 3, 5, True
    elif difficulty == "medium":
        n, vmax, show = 4, 9, False
    else:
        n, vmax, show = 5, 9, False
    labels = tuple(_LETTERS[:n])
    values = tuple(rng.randint(1, vmax) for _ in range(n))
    chart = BarChart(labels, values, ymax=vmax + 1, tick=1, show_values=show)
    if difficulty != "hard" or len(set(values)) == 1:
        i = rng.randrange(n)
        q = f"What is the value of bar {labels[i]}?"
        how = "is labelled" if show else "reaches"
        thought = f"Bar {labels[i]} {how} {values[i]}."
        return Task("bar_chart", difficulty, "chart", q, str(values[i]), thought, chart)
    while True:
        i, j = rng.sample(range(n), 2)
        if values[i] != values[j]:
            break
    if values[i] < values[j]:
        i, j = j, i
    diff = values[i] - values[j]
    q = f"How much larger is bar {labels[i]} than bar {labels[j]}?"
    thought = f"Bar {labels[i]} reaches {values[i]}. Bar {labels[j]} reaches {values[j]}. {values[i]}-{values[j]} = {diff}."
    return Task("bar_chart", difficulty, "chart", q, str(diff), thought, chart)


GENERATORS: dict[str, Callable[[random.Random, str], Task]] = {
    "image_arith": image_arith,
    "count_shapes": count_shapes,
    "bar_chart": bar_chart,
    "text_arith": text_arith,
    "compare": compare,
    "linear_eq": linear_eq,
    "digit_max": digit_max,
    "image_digit_max": image_digit_max,
    "digit_sum": digit_sum,
}


def make_task(family: str, difficulty: str, rng: random.Random) -> Task:
    """One task of ``family`` at ``difficulty`` ("easy" | "medium" | "hard") drawn from ``rng``."""
    if family not in GENERATORS:
        raise ValueError(f"unknown task family {family!r}; choose from {sorted(GENERATORS)}")
    if difficulty not in ("easy", "medium", "hard"):
        raise ValueError(f"unknown difficulty {difficulty!r}; choose easy, medium or hard")
    return GENERATORS[family](rng, difficulty)
