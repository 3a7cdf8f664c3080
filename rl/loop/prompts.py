"""Training prompts in a reproducible order, with a cursor that checkpoints can store.

Epoch e visits the examples in ``permutation(seed + e)``; the cursor counts prompts taken
since the start, so resuming from a cursor gives the same order as never stopping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from policy.data import Example
from policy.processor import TilingSettings, num_tiles
from rewards import RewardInput
from rl.algos.batching import Prompt
from rollout.types import RolloutRequest


class PromptStream:
    """``take(n)`` returns the next n (index, example) pairs, cycling through epochs."""

    def __init__(self, examples: Sequence[Example], seed: int, cursor: int = 0) -> None:
        if not examples:
            raise ValueError("the training data has no examples")
        self.examples = examples  # a lazy policy.data set is indexed, never listed whole
        self.seed = seed
        self.cursor = cursor

    def _order(self, epoch: int) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.examples), generator=gen).tolist()

    def take(self, n: int) -> list[tuple[int, Example]]:
        out = []
        for _ in range(n):
            epoch, pos = divmod(self.cursor, len(self.examples))
            index = self._order(epoch)[pos]
            out.append((index, self.examples[index]))
            self.cursor += 1
        return out


@dataclass(frozen=True)
class PromptBuilder:
    """Builds the records each side needs from one example: the engine's request, the
    learner's image tiles and the reward's input. ``mode`` "as-data" keeps the example's."""

    processor: object  # policy.processor.SAILVLProcessor
    mode: str = "as-data"

    def mode_of(self, example: Example) -> str:
        return example.mode if self.mode == "as-data" else self.mode

    def prompt(
        self, prompt_id: str, example: Example, mode: str | None = None, pixels: bool = True
    ) -> Prompt:
        """The one pass over a prompt: rendered and tokenised here (images expanded to
        their tile counts), the ids going to the engine (``request``) and the learner alike.
        ``pixels`` False skips the image tiles (generation-only prompts, e.g. eval: the tile
        counts come from the image sizes)."""
        mode = mode or self.mode_of(example)
        pixel_values: torch.Tensor | None = None
        if pixels and example.images:
            processed = self.processor.process(example.question, example.images, mode)
            return Prompt(prompt_id, example, mode, processed.pixel_values,
                          tuple(processed.input_ids))  # fmt: skip
        try:
            tiles = tuple(_tiles(image, self.processor.settings) for image in example.images)
            text = self.processor.prompt_text(example.question, tiles, mode)
            ids: tuple[int, ...] | None = tuple(self.processor.text_ids(text, tiles))
        except (ValueError, OSError):
            ids = None  # the engine names the prompt in a PromptFailure, as for any request
        return Prompt(prompt_id, example, mode, pixel_values, ids)

    @staticmethod
    def request(prompt: Prompt) -> RolloutRequest:
        ex = prompt.example
        return RolloutRequest(
            prompt.prompt_id, ex.question, tuple(ex.images), prompt.mode, prompt.input_ids
        )

    @staticmethod
    def reward_input(prompt: Prompt, text: str) -> RewardInput:
        ex = prompt.example
        meta = {**ex.metadata, "data_source": ex.data_source, "domain": ex.domain}
        return RewardInput(text, ex.answer, prompt.mode, meta, prompt=ex.question)


def _tiles(image: object, settings: TilingSettings) -> int:
    """Tiles of one image from its size alone (PIL reads only the header of a file)."""
    if isinstance(image, Image.Image):
        return num_tiles(*image.size, settings)
    with Image.open(image) as opened:  # type: ignore[arg-type]
        return num_tiles(*opened.size, settings)
