"""Shared builders for the learner tests: tiny SAIL-VL2 checkpoints and train sequences."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from policy.batch import Sequence
from policy.processor import SAILVLProcessor

WORDS = [
    "the",
    "answer",
    "is",
    "forty",
    "two",
    "because",
    "six",
    "times",
    "seven",
    "makes",
    "it",
    "so",
    "and",
    "we",
    "box",
    "it",
]


def text_sequence(tokenizer, seed: int, prompt_words: int = 5, response_words: int = 8) -> Sequence:
    """A text-only sequence: prompt (not trained) + response (trained)."""
    rng = np.random.default_rng(seed)
    prompt = tokenizer.encode(" ".join(rng.choice(WORDS, prompt_words)), add_special_tokens=False)
    response = tokenizer.encode(
        " " + " ".join(rng.choice(WORDS, response_words)), add_special_tokens=False
    )
    ids = list(prompt) + list(response)
    return Sequence(input_ids=ids, loss_mask=[0] * len(prompt) + [1] * len(response))


def image_sequence(tokenizer, config, seed: int, response_words: int = 6) -> Sequence:
    """A one-image sequence built by the real processor (1 tile of 448 px)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (448, 448, 3), dtype=np.uint8))
    prompt = SAILVLProcessor(tokenizer, config).process("What is shown?", [image], mode="direct")
    response = tokenizer.encode(
        " " + " ".join(rng.choice(WORDS, response_words)), add_special_tokens=False
    )
    ids = list(prompt.input_ids) + list(response)
    return Sequence(
        input_ids=ids,
        loss_mask=[0] * len(prompt.input_ids) + [1] * len(response),
        pixel_values=prompt.pixel_values,
    )


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def rl_sequence(tokenizer, seed: int, prompt_words: int, response_words: int) -> Sequence:
    """A text sequence with what the RL loss reads: a per-sequence advantage (+-1 by seed)
    broadcast over the response and engine logprobs that differ from any real policy's."""
    seq = text_sequence(tokenizer, seed, prompt_words, response_words)
    rng = np.random.default_rng(1000 + seed)
    adv = 1.0 if seed % 2 == 0 else -1.0
    advantages = [adv * m for m in seq.loss_mask]
    rollout = [float(-2.0 + 0.5 * rng.standard_normal()) * m for m in seq.loss_mask]
    return Sequence(
        input_ids=seq.input_ids,
        loss_mask=seq.loss_mask,
        extras={"advantages": advantages, "rollout_logprobs": rollout},
    )


def join_rank(rank: int, world: int, port: int) -> None:
    """Make this (spawned) process rank ``rank`` of a ``world``-rank learner group on the
    loopback address, one torch thread."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK="0",
        OMP_NUM_THREADS="1",
    )
    torch.set_num_threads(1)
