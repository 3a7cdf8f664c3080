"""Synthetic, verifiable multimodal demo tasks (image arithmetic, shape counting, bar charts,
text arithmetic, comparisons, linear equations; by name also digit chains: the largest
digit, a sum of digits) with reference answers and short reasoning
traces, written as SFT / RL / eval datasets in the shared example schema.

    python -m rl.tasks OUT_DIR [--seed 0] [--image-size 224] [--n-sft-think 200] ...
"""

from rl.tasks.config import ALL_FAMILIES, DEFAULT_FAMILIES, IMAGE_FAMILIES, TaskConfig
from rl.tasks.dataset import (
    SPLITS,
    DatasetManifest,
    direct_response,
    ensure_dataset,
    generate_split,
    think_response,
    write_dataset,
)
from rl.tasks.generators import GENERATORS, Task, make_task
from rl.tasks.render import render

__all__ = [
    "ALL_FAMILIES",
    "DEFAULT_FAMILIES",
    "GENERATORS",
    "IMAGE_FAMILIES",
    "SPLITS",
    "DatasetManifest",
    "Task",
    "TaskConfig",
    "direct_response",
    "generate_split",
    "make_task",
    "render",
    "think_response",
    "ensure_dataset",
    "write_dataset",
]
