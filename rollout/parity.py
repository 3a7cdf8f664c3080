"""Parity between vLLM sampling and ``policy/``'s model: sample with the rollout engine,
recompute the logprobs of exactly those tokens with the HF ``SAILVLModel`` (temperature 1,
the distribution vLLM reports with ``logprobs_mode="raw_logprobs"``) and compare.

The same functions check a weight update: perturb the learner-side weights, push them
through ``RolloutEngine.update_weights`` and compare again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from rollout.types import Completion, RolloutRequest, SamplingSettings


@dataclass(frozen=True)
class ParityReport:
    """Per-token |logprob(vLLM) - logprob(policy)| over all sampled tokens."""

    max_abs_diff: float
    mean_abs_diff: float
    n_tokens: int
    n_completions: int
    weight_version: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "n_tokens": self.n_tokens,
            "n_completions": self.n_completions,
            "weight_version": self.weight_version,
        }


@torch.no_grad()
def policy_logprobs(
    model, prompt_ids: Sequence[int], response_ids: Sequence[int], pixel_values
) -> torch.Tensor:
    """log p(response_ids[k] | prompt, response[:k]) under the HF model, float64 on CPU."""
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], dtype=torch.long)
    logits = model(input_ids=ids, pixel_values=pixel_values, use_cache=False).logits[0]
    start = len(prompt_ids) - 1
    logits = logits[start : start + len(response_ids)].double()
    targets = torch.tensor(list(response_ids), dtype=torch.long)
    return torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]


def compare(
    model, processor, requests: Sequence[RolloutRequest], completions: Sequence[Completion]
) -> ParityReport:
    """Recompute every completion's logprobs with ``model`` and summarise the differences.

    Also checks that ``policy.processor`` builds exactly the prompt ids vLLM sampled from.
    """
    by_id = {r.prompt_id: r for r in requests}
    processed = {}
    diffs = []
    for completion in completions:
        request = by_id[completion.prompt_id]
        if request.prompt_id not in processed:
            processed[request.prompt_id] = processor.process(
                request.prompt, list(request.images), request.mode
            )
        inputs = processed[request.prompt_id]
        if tuple(inputs.input_ids) != completion.prompt_token_ids:
            raise AssertionError(
                f"prompt {request.prompt_id!r}: policy.processor gives other prompt ids than "
                f"the rollout engine ({len(inputs.input_ids)} vs "
                f"{len(completion.prompt_token_ids)} tokens)"
            )
        if not completion.token_ids:
            continue
        ours = policy_logprobs(
            model, completion.prompt_token_ids, completion.token_ids, inputs.pixel_values
        )
        theirs = torch.tensor(completion.logprobs, dtype=torch.float64)
        diffs.append((ours - theirs).abs())
    all_diffs = torch.cat(diffs) if diffs else torch.zeros(0, dtype=torch.float64)
    return ParityReport(
        max_abs_diff=float(all_diffs.max()) if len(all_diffs) else 0.0,
        mean_abs_diff=float(all_diffs.mean()) if len(all_diffs) else 0.0,
        n_tokens=len(all_diffs),
        n_completions=len(completions),
        weight_version=completions[0].weight_version if completions else -1,
    )


def perturb_(model, scale: float = 0.02, seed: int = 0) -> None:
    """Add seeded Gaussian noise (``scale`` x each tensor's std) to every parameter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            std = float(param.float().std()) if param.numel() > 1 else 1.0
            param.add_((noise * scale * max(std, 1e-3)).to(param.dtype))


def weight_buckets(
    named_tensors, bucket_bytes: int = 64 * 2**20
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Group (name, tensor) pairs into buckets of about ``bucket_bytes`` each."""
    bucket, size = [], 0
    for name, tensor in named_tensors:
        bucket.append((name, tensor))
        size += tensor.numel() * tensor.element_size()
        if size >= bucket_bytes:
            yield bucket
            bucket, size = [], 0
    if bucket:
        yield bucket


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """A reproducible random RGB image (smooth blobs, so bicubic resizing matters)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(height // 16, 2), max(width // 16, 2), 3))
    return Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)


def parity_requests(image_dir: str | os.PathLike | None) -> list[RolloutRequest]:
    """The parity prompt set: text-only prompts in both modes, and with ``image_dir`` also a
    single-tile image, a multi-tile image and two images in one prompt (files written
    there, so images go in by path as users pass them)."""
    requests = [
        RolloutRequest("text-think", "What is 12 + 30? Explain briefly.", (), "think"),
        RolloutRequest("text-direct", "Name three prime numbers.", (), "direct"),
        RolloutRequest(
            "text-chat",
            (
                {"role": "system", "content": "You are a careful math tutor."},
                {"role": "user", "content": "How many sides does a triangle have?"},
            ),
            (),
            "direct",
        ),
    ]
    if image_dir is None:
        return requests
    paths = []
    for name, (w, h), seed in (
        ("square", (300, 300), 1),
        ("wide", (900, 420), 2),
        ("tall", (360, 800), 3),
    ):
        path = os.path.join(os.fspath(image_dir), f"{name}.png")
        synthetic_image(w, h, seed).save(path)
        paths.append(path)
    square, wide, tall = paths
    return requests + [
        RolloutRequest("image-single-tile", "What is in the image?", (square,), "direct"),
        RolloutRequest("image-multi-tile", "Count the shapes in the image.", (wide,), "think"),
        RolloutRequest(
            "image-two",
            "Compare <image> with <image>. Which is brighter?",
            (tall, square),
            "direct",
        ),
    ]


def run_parity(
    engine, model, requests: Sequence[RolloutRequest], sampling: SamplingSettings
) -> ParityReport:
    """Sample with ``engine``, recompute with ``model`` (the learner-side HF model)."""
    result = engine.generate(requests, sampling)
    if result.failures:
        raise RuntimeError(f"parity prompts failed: {[f.message for f in result.failures]}")
    return compare(model, engine.processor, requests, result.completions)
