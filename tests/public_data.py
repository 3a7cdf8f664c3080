"""Small data files in the published schemas, written with Hugging Face ``datasets`` itself
(see /work/shared/reference/public-data.md): geometry3k-like (``Sequence(Image())``), verl's
geo3k layout, MathVista-like (``decoded_image`` + ``choices``), LLaVA JSON with image files,
and TRL prompt/completion and messages."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

COLORS = [(255, 0, 0), (0, 128, 255), (20, 200, 40), (240, 240, 0)]


def png(color=(255, 0, 0), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _features():
    from datasets import Features, Image, List, Value

    return Features, Image, List, Value


def geometry3k(path: Path, n: int = 4, bad_row: int | None = None, size=(40, 30)) -> Path:
    """hiyouga/geometry3k: images (list of Image), problem with <image>, answer."""
    from datasets import Dataset

    Features, Img, List, Value = _features()
    rows = {
        "images": [[{"bytes": png(COLORS[i % 4], size), "path": None}] for i in range(n)],
        "problem": [f"<image>Find x in triangle {i}." for i in range(n)],
        "answer": [str(10 + i) for i in range(n)],
    }
    if bad_row is not None:
        rows["images"][bad_row] = [{"bytes": b"not an image at all", "path": None}]
    from datasets import Sequence

    feats = Features({"images": Sequence(Img()), "problem": Value("string"),
                      "answer": Value("string")})  # fmt: skip
    Dataset.from_dict(rows, features=feats).to_parquet(str(path))
    return path


def verl_geo3k(path: Path, n: int = 3) -> Path:
    """verl's geo3k preprocessing: prompt as messages, reward_model.ground_truth, extra_info."""
    from datasets import Dataset

    Features, Img, List, Value = _features()
    rows = {
        "data_source": ["hiyouga/geometry3k"] * n,
        "prompt": [
            [{"role": "user", "content": f"<image>Angle {i}? Put it in \\boxed{{}}."}]
            for i in range(n)
        ],  # fmt: skip
        "images": [[{"bytes": png(COLORS[i % 4]), "path": None}] for i in range(n)],
        "ability": ["math"] * n,
        "reward_model": [{"style": "rule", "ground_truth": str(30 + i)} for i in range(n)],
        "extra_info": [
            {"split": "train", "index": i, "answer": str(30 + i), "question": f"Angle {i}?"}
            for i in range(n)
        ],  # fmt: skip
    }
    msg = {"role": Value("string"), "content": Value("string")}
    feats = Features({
        "data_source": Value("string"), "prompt": List(msg), "images": List(Img()),
        "ability": Value("string"),
        "reward_model": {"style": Value("string"), "ground_truth": Value("string")},
        "extra_info": {"split": Value("string"), "index": Value("int64"),
                       "answer": Value("string"), "question": Value("string")},
    })  # fmt: skip
    Dataset.from_dict(rows, features=feats).to_parquet(str(path))
    return path


def mathvista(path: Path) -> Path:
    """AI4Math/MathVista testmini: decoded_image, image (a relative path), choices, query."""
    from datasets import Dataset

    Features, Img, List, Value = _features()
    rows = {
        "pid": ["1", "2"],
        "question": ["Which shape is red?", "How many bars?"],
        "image": ["images/1.jpg", "images/2.jpg"],
        "decoded_image": [
            {"bytes": png(COLORS[0]), "path": None},
            {"bytes": png(COLORS[1]), "path": None},
        ],  # fmt: skip
        "choices": [["circle", "square", "triangle"], None],
        "answer": ["square", "4"],
        "question_type": ["multi_choice", "free_form"],
        "answer_type": ["text", "integer"],
        "query": [
            "Hint: choose.\nQuestion: Which shape is red?\nChoices:\n(A) circle\n"
            "(B) square\n(C) triangle",
            "Question: How many bars?",
        ],  # fmt: skip
    }
    feats = Features({
        "pid": Value("string"), "question": Value("string"), "image": Value("string"),
        "decoded_image": Img(), "choices": List(Value("string")), "answer": Value("string"),
        "question_type": Value("string"), "answer_type": Value("string"),
        "query": Value("string"),
    })  # fmt: skip
    Dataset.from_dict(rows, features=feats).to_parquet(str(path))
    return path


def llava(path: Path) -> Path:
    """LLaVA / ShareGPT SFT JSON: a list of {id, image, conversations}, images as files."""
    (path.parent / "imgs").mkdir(parents=True, exist_ok=True)
    for i in range(2):
        Image.new("RGB", (36, 28), COLORS[i]).save(path.parent / "imgs" / f"{i}.png")
    records = [
        {"id": "a", "image": "imgs/0.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat color is it?"},
            {"from": "gpt", "value": "<think>\nIt looks red.\n</think>\n\n\\boxed{red}"}]},
        {"id": "b", "image": "imgs/1.png", "conversations": [
            {"from": "human", "value": "<image>\nName the color."},
            {"from": "gpt", "value": "Blue."}]},
    ]  # fmt: skip
    path.write_text(json.dumps(records))
    return path


def trl_prompt_completion(path: Path, n: int = 4) -> Path:
    from datasets import Dataset

    rows = {"prompt": [f"What is {i} + {i}?" for i in range(n)],
            "completion": [f"\\boxed{{{2 * i}}}" for i in range(n)]}  # fmt: skip
    Dataset.from_dict(rows).to_json(str(path), lines=True)
    return path


def trl_messages(path: Path, n: int = 4) -> Path:
    from datasets import Dataset

    rows = {"messages": [[{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": f"Say {i}."},
                          {"role": "assistant", "content": f"<think>\nok\n</think>\n\n{i}"}]
                         for i in range(n)]}  # fmt: skip
    Dataset.from_dict(rows).to_parquet(str(path))
    return path
