"""The synthetic demo tasks: answers are right, thoughts end in them, datasets are reproducible."""

import ast
import json
import operator
import random
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rl.config import ConfigError, from_dict
from rl.tasks import (
    ALL_FAMILIES,
    DEFAULT_FAMILIES,
    IMAGE_FAMILIES,
    TaskConfig,
    generate_split,
    make_task,
    render,
    think_response,
    write_dataset,
)
from rl.tasks.dataset import assign_levels
from rl.tasks.generators import teacher_trace
from rl.tasks.render import COLORS, BarChart, Shape, ShapesImage, TextImage

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _eval_arith(text: str) -> int:
    """Independent evaluator of + - * and parentheses over integers (no eval())."""

    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise AssertionError(f"unexpected node in {text!r}")

    return walk(ast.parse(text, mode="eval").body)


def _solve_linear(question: str) -> Fraction:
    lhs, rhs = question.removeprefix("Solve for x: ").split("=")

    def coeffs(side):
        a = b = 0
        for term in side.replace(" ", "").split("+"):
            if term.endswith("x"):
                a += int(term[:-1] or 1)
            else:
                b += int(term)
        return a, b

    (a1, b1), (a2, b2) = coeffs(lhs), coeffs(rhs)
    return Fraction(b2 - b1, a1 - a2)


def _reference(task) -> int:
    """Recompute the answer from the question and image spec alone."""
    q = task.question
    if task.family == "text_arith":
        return _eval_arith(q.removeprefix("What is ").removesuffix("?"))
    if task.family == "image_arith":
        return _eval_arith(task.image.lines[0])
    if task.family == "linear_eq":
        x = _solve_linear(q)
        assert x.denominator == 1
        return int(x)
    if task.family == "compare":
        if "*" in q:
            return max(_eval_arith(e) for e in re.findall(r"\d+ \* \d+", q))
        return max(int(n) for n in re.findall(r"\d+", q))
    if task.family == "count_shapes":
        color, kind = re.match(r"How many (\w+) (\w+)s are", q).groups()
        return sum(s.color == color and s.kind == kind for s in task.image.shapes)
    if task.family == "digit_max":
        return max(
            int(d) for d in q.removeprefix("What is the largest digit in ").rstrip("?").split()
        )
    if task.family == "image_digit_max":
        return max(int(d) for d in task.image.lines[0].split())
    if task.family == "digit_sum":
        return _eval_arith(q.removeprefix("What is ").removesuffix("?"))
    if task.family == "bar_chart":
        values = dict(zip(task.image.labels, task.image.values))
        bars = re.findall(r"bar ([A-H])", q)
        return values[bars[0]] if len(bars) == 1 else values[bars[0]] - values[bars[1]]
    raise AssertionError(task.family)


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_answers_match_independent_solution_and_thought(family, difficulty):
    for seed in range(60):
        task = make_task(family, difficulty, random.Random(seed))
        assert task.answer == str(_reference(task)), task
        assert int(task.answer) >= 0
        # The thought is short and its last number is the answer.
        assert re.findall(r"\d+", task.thought)[-1] == task.answer, task.thought
        assert len(task.thought) < 120
        assert (task.image is not None) == (family in IMAGE_FAMILIES)


@pytest.mark.parametrize("family", ["digit_max", "digit_sum", "image_digit_max"])
def test_digit_chains_step_through_single_digit_facts(family):
    lengths = {"easy": 3, "medium": 4, "hard": 5}
    for difficulty, n in lengths.items():
        for seed in range(40):
            task = make_task(family, difficulty, random.Random(seed))
            shown = task.image.lines[0] if task.image is not None else task.question
            digits = [int(d) for d in re.findall(r"\d", shown)]
            assert len(digits) == n and all(1 <= d <= 9 for d in digits), task.question
            thought = task.thought
            if task.image is not None:  # the digits read from the image come first
                read = f"The image shows {shown}. "
                assert thought.startswith(read), thought
                thought = thought.removeprefix(read)
            steps = thought.split(". ")
            assert len(steps) == n - 1, task.thought  # one fact per further digit
            running = digits[0]
            for step, d in zip(steps, digits[1:]):
                running = running + d if family == "digit_sum" else max(running, d)
                assert step.rstrip(".").endswith(f"= {running}"), (step, task.thought)


@pytest.mark.parametrize("family", ["digit_max", "image_digit_max"])
def test_digit_max_answers_are_spread(family):
    answers = [make_task(family, "medium", random.Random(s)).answer for s in range(700)]
    counts = {a: answers.count(a) for a in set(answers)}
    assert set(counts) == {str(d) for d in range(3, 10)}
    assert max(counts.values()) < 2 * min(counts.values())  # no answer is a free guess


def test_count_shapes_do_not_overlap():
    for seed in range(50):
        task = make_task("count_shapes", "hard", random.Random(seed))
        shapes = task.image.shapes
        for i, a in enumerate(shapes):
            for b in shapes[i + 1 :]:
                assert max(abs(a.cx - b.cx), abs(a.cy - b.cy)) > a.r + b.r


def test_assign_levels_is_exactly_proportional():
    rng = random.Random(0)
    levels = assign_levels(10, {"easy": 0.7, "medium": 0.3}, rng)
    assert sorted(levels) == ["easy"] * 7 + ["medium"] * 3
    levels = assign_levels(7, {"easy": 1, "medium": 1, "hard": 1}, rng)
    assert sorted(levels.count(x) for x in ("easy", "medium", "hard")) == [2, 2, 3]
    assert assign_levels(4, {"easy": 0.0, "medium": 1.0}, rng) == ["medium"] * 4


def test_render_draws_the_spec():
    size = 128
    img = np.asarray(render(ShapesImage((Shape("circle", "red", 0.5, 0.5, 0.2),)), size))
    assert img.shape == (size, size, 3)
    assert tuple(img[size // 2, size // 2]) == COLORS["red"]
    assert tuple(img[2, 2]) == (255, 255, 255)
    text = np.asarray(render(TextImage(("3 + 4",)), size))
    assert (text < 128).any(), "no ink drawn for the expression"
    bars = np.asarray(render(BarChart(("A", "B"), (1, 5), ymax=6), size))
    assert (bars != 255).any()


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def small_cfg():
    return TaskConfig(n_sft_think=6, n_sft_direct=5, n_rl=4, n_eval=3, image_size=96, seed=7)


def test_write_dataset_layout_and_schema(tmp_path, small_cfg):
    manifest = write_dataset(small_cfg, tmp_path)
    nfam = len(DEFAULT_FAMILIES)  # the default mix
    assert manifest.counts == {
        "eval": 3 * nfam,
        "sft_think": 6 * nfam,
        "sft_direct": 5 * nfam,
        "rl": 4 * nfam,
    }
    think = _read(manifest.path("sft_think"))
    direct = _read(manifest.path("sft_direct"))
    rl_rows = _read(manifest.path("rl"))
    assert {r["mode"] for r in think} == {"think"} and {r["mode"] for r in direct} == {"direct"}
    for row in think:
        assert row["response"] == think_response_from(row)
        assert row["response"].startswith("<think>\n") and row["response"].endswith(
            f"\\boxed{{{row['answer']}}}."
        )
    for row in direct:
        assert row["response"] == f"The answer is \\boxed{{{row['answer']}}}."
        assert "<think>" not in row["response"]
    for row in rl_rows + _read(manifest.path("eval")):
        assert "response" not in row and row["answer"].isdigit()
    for row in think + direct + rl_rows:
        assert row["data_source"] == f"synth_{row['family']}"
        assert "<image>" not in row["prompt"]
        for rel in row["images"]:
            with Image.open(tmp_path / rel) as im:
                assert im.size == (96, 96) and im.mode == "RGB"
        assert bool(row["images"]) == (row["family"] in IMAGE_FAMILIES)
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved["counts"] == manifest.counts and saved["config"]["seed"] == 7


def think_response_from(row):
    class _T:
        thought = row["thought"]
        answer = row["answer"]

    return think_response(_T)


def test_dataset_is_deterministic_and_seed_sensitive(tmp_path, small_cfg):
    a = write_dataset(small_cfg, tmp_path / "a")
    b = write_dataset(small_cfg, tmp_path / "b")
    for split in a.files:
        assert a.path(split).read_text() == b.path(split).read_text()
    for png in sorted((tmp_path / "a" / "images").rglob("*.png")):
        assert png.read_bytes() == (tmp_path / "b" / png.relative_to(tmp_path / "a")).read_bytes()
    other = TaskConfig(**{**small_cfg.__dict__, "seed": 8})
    c = write_dataset(other, tmp_path / "c")
    assert c.path("rl").read_text() != a.path("rl").read_text()


def test_eval_is_held_out_and_distinct():
    # A small problem space (easy linear equations: 81 problems) makes collisions certain.
    cfg = TaskConfig(
        families=["linear_eq", "text_arith"],
        difficulty={"easy": 1.0},
        n_eval=30,
        n_rl=200,
        n_sft_think=200,
        n_sft_direct=0,
    )
    held = generate_split(cfg, "eval")
    keys = {t.key() for t in held}
    assert len(keys) == len(held)
    for split in ("rl", "sft_think"):
        train = generate_split(cfg, split, frozenset(keys))
        assert not keys & {t.key() for t in train}
    too_many = TaskConfig(families=["linear_eq"], difficulty={"easy": 1.0}, n_eval=100)
    with pytest.raises(ValueError, match="ran out of distinct problems"):
        generate_split(too_many, "eval")


def test_difficulty_mix_in_written_split(tmp_path):
    cfg = TaskConfig(
        families=["text_arith"],
        n_rl=10,
        n_eval=0,
        n_sft_think=0,
        n_sft_direct=0,
        difficulty={"easy": 0.3, "medium": 0.7},
    )
    rows = _read(write_dataset(cfg, tmp_path).path("rl"))
    levels = [r["difficulty"] for r in rows]
    assert levels.count("easy") == 3 and levels.count("medium") == 7


@pytest.mark.parametrize(
    "data, key",
    [
        ({"families": ["poetry"]}, "families"),
        ({"families": []}, "families"),
        ({"difficulty": {"extreme": 1.0}}, "difficulty"),
        ({"difficulty": {"easy": 0.0}}, "difficulty"),
        ({"n_rl": -1}, "n_rl"),
        ({"image_size": 16}, "image_size"),
        ({"direct_template": "no slot"}, "direct_template"),
        ({"teacher_slip": 1.5}, "teacher_slip"),
        ({"teacher_slip": 0.5, "families": ["compare"]}, "teacher_slip"),
    ],
)
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(TaskConfig, data)


def test_unknown_family_and_difficulty_rejected():
    with pytest.raises(ValueError, match="unknown task family"):
        make_task("poetry", "easy", random.Random(0))
    with pytest.raises(ValueError, match="unknown difficulty"):
        make_task("compare", "extreme", random.Random(0))


def test_written_files_load_with_the_shared_schema(tmp_path, small_cfg):
    from policy.data import read_examples

    manifest = write_dataset(small_cfg, tmp_path)
    think = read_examples(manifest.path("sft_think"))
    rl_examples = read_examples(manifest.path("rl"))
    assert len(think) == manifest.counts["sft_think"]
    assert all(ex.mode == "think" and ex.response for ex in think)
    assert all(ex.response is None for ex in rl_examples)
    assert {ex.mode for ex in read_examples(manifest.path("sft_direct"))} == {"direct"}
    with_images = [ex for ex in think if ex.images]
    assert with_images and all(
        Path(p).is_absolute() and Path(p).is_file() for ex in with_images for p in ex.images
    )
    assert think[0].metadata["thought"] and think[0].metadata["family"] in ALL_FAMILIES


def _teacher_reference(digits: list[int], slips: list[bool]) -> int:
    """The max a teacher reaches who misses the digits flagged in ``slips``."""
    best = digits[0]
    for d, missed in zip(digits[1:], slips):
        best = best if missed else max(best, d)
    return best


@pytest.mark.parametrize("family", ["digit_max", "image_digit_max"])
def test_teacher_trace_misses_only_near_digits_and_carries_the_error(family):
    wrong = 0
    for seed in range(300):
        task = make_task(family, "hard", random.Random(seed))
        assert teacher_trace(task, 0.0, random.Random(seed)) == task
        taught = teacher_trace(task, 1.0, random.Random(seed))
        shown = task.image.lines[0] if task.image is not None else task.question
        digits = [int(d) for d in re.findall(r"\d", shown)]
        body = taught.thought.removeprefix(f"The image shows {shown}. ")
        steps = re.findall(r"max (\d) (\d) = (\d)\.", body)
        assert len(steps) == len(digits) - 1 and body.count("max ") == len(steps)
        slips, best = [], digits[0]
        for (a, b, c), d in zip(steps, digits[1:]):
            assert (int(a), int(b)) == (best, d), taught.thought  # the chain as written
            missed = int(c) != max(best, d)
            near = 1 <= d - best <= 2
            assert missed == near, taught.thought  # slip 1: every near miss, only those
            slips.append(missed)
            best = int(c)
        assert taught.answer == str(_teacher_reference(digits, slips)) == str(best)
        assert taught.question == task.question and taught.image == task.image
        wrong += taught.answer != task.answer
    assert 0.1 < wrong / 300 < 0.5  # a share of the traces, not all of them


def test_teacher_trace_leaves_other_families_alone():
    for family in ("compare", "digit_sum", "count_shapes"):
        task = make_task(family, "medium", random.Random(1))
        assert teacher_trace(task, 1.0, random.Random(1)) == task


def test_teacher_slip_changes_only_the_sft_think_responses(tmp_path):
    base = dict(families=["digit_max"], n_sft_think=200, n_sft_direct=20, n_rl=20, n_eval=20,
                difficulty={"medium": 0.5, "hard": 0.5})  # fmt: skip
    right = write_dataset(TaskConfig(**base), tmp_path / "right")
    slipped = write_dataset(TaskConfig(**base, teacher_slip=0.7), tmp_path / "slip")
    for split in ("eval", "rl", "sft_direct"):
        assert _read(right.path(split)) == _read(slipped.path(split))
    a, b = _read(right.path("sft_think")), _read(slipped.path("sft_think"))
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b]
    assert [r["answer"] for r in a] == [r["answer"] for r in b]  # the true answers stay
    taught = [re.search(r"boxed\{(\d+)\}", r["response"]).group(1) for r in b]
    errors = sum(t != r["answer"] for t, r in zip(taught, b))
    assert 0.05 < errors / len(b) < 0.4, errors
    assert all(r["thought"] in r["response"] for r in b)
    again = write_dataset(TaskConfig(**base, teacher_slip=0.7), tmp_path / "again")
    assert _read(again.path("sft_think")) == b  # seeded
