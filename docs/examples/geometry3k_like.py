"""Write a small parquet shaped like hiyouga/geometry3k (``images``: a list of Image
features, ``problem`` with an ``<image>`` marker, ``answer``), with Hugging Face ``datasets``.

    python docs/examples/geometry3k_like.py runs/geo3k-data/train.parquet [rows]
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

from datasets import Dataset, Features, Image, Sequence, Value
from PIL import Image as PILImage
from PIL import ImageDraw


def triangle(angle: int, size: int = 112) -> bytes:
    image = PILImage.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).polygon([(10, 100), (100, 100), (10 + angle // 2, 20)], outline="black")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write(path: str | Path, rows: int = 16, seed: int = 0) -> Path:
    rng = random.Random(seed)
    angles = [rng.randint(20, 80) for _ in range(rows)]
    data = {
        "images": [[{"bytes": triangle(a), "path": None}] for a in angles],
        "problem": [
            f"<image>Two angles of the triangle are 90 and {90 - a}. Find x." for a in angles
        ],
        "answer": [str(a) for a in angles],
    }
    features = Features({"images": Sequence(Image()), "problem": Value("string"),
                         "answer": Value("string")})  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(data, features=features).to_parquet(str(path))
    return path


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16)
