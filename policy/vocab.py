"""The strings of SAIL-VL2's chat format that every package shares, in one home (no imports,
so anything may read them): chat and thinking tokens, the image tokens, the prompt modes.
rewards/ imports nothing of the project and keeps equal copies (tests/test_one_home.py)."""

from __future__ import annotations

from typing import Literal, get_args

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_START = "<think>"
THINK_END = "</think>"
IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"
# The image tokens: only the processor writes them; a completion must never contain them.
IMAGE_TOKENS = (IMG_CONTEXT, IMG_START, IMG_END)

Mode = Literal["think", "direct"]
MODES: tuple[str, ...] = get_args(Mode)  # "think": reason in <think> first; "direct": answer
