"""SFT training data: examples of the shared schema (``policy.data``) split into pools by
their ``mode``, read in the epoch order of the stage, with a resumable cursor.

    longcot: every example once per epoch, shuffled by (seed, epoch);
    fusion:  ``mixing.fusion_order`` over the direct pool and the think (CoT) pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from policy.data import Example, ReadOptions, read_examples
from sft.mixing import COT, fusion_order, shuffled_order


@dataclass(frozen=True)
class Cursor:
    """Where the data stream stands: ``position`` examples into epoch ``epoch``."""

    epoch: int = 0
    position: int = 0


def load_sft_examples(
    files: Sequence[str], options: ReadOptions | None = None, cache: Path | None = None
) -> Sequence[Example]:
    """Examples of all ``files`` (any schema of docs/data.md), checked up front: each must
    have a response (DataError names file:row, or the row is skipped with on_bad_row: skip).
    The result is lazy: rows become Examples when a batch reads them."""
    if not files:
        raise ValueError("sft.train_files: list at least one JSONL or parquet file of SFT examples")
    return read_examples(list(files), options, cache, require=("response",))


class SFTStream:
    """Epoch orders of one stage over fixed pools; pure given (examples, settings)."""

    def __init__(
        self,
        examples: Sequence[Example],
        mode: str,
        seed: int,
        cot_fraction: float = 0.1,
        fusion_epoch_size: int | None = None,
    ) -> None:
        if mode not in ("longcot", "fusion"):
            raise ValueError(f"mode={mode!r} is not one of 'longcot', 'fusion'")
        self.examples = examples  # indexed lazily: a large set is never listed whole
        self.mode = mode
        self.seed = seed
        self.cot_fraction = cot_fraction
        self.fusion_epoch_size = fusion_epoch_size
        modes = getattr(examples, "modes", None)
        if modes is None:
            modes = np.array([e.mode == "think" for e in examples], dtype=np.int8)
        self.think = np.flatnonzero(modes == 1).tolist()
        self.direct = np.flatnonzero(modes == 0).tolist()
        self._cached: tuple[int, list[int]] | None = None
        if not len(self.examples):
            raise ValueError("no SFT examples to train on")
        self.epoch_size = len(self.epoch_indices(0))

    def epoch_indices(self, epoch: int) -> list[int]:
        """Indices into ``examples`` of epoch ``epoch`` in training order (the last one asked
        for is kept: a million-row order takes about a second to build)."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._order(epoch))
        return self._cached[1]

    def _order(self, epoch: int) -> list[int]:
        if self.mode == "longcot":
            return shuffled_order(len(self.examples), self.seed, epoch)
        order = fusion_order(
            len(self.direct),
            len(self.think),
            self.cot_fraction,
            self.seed,
            epoch,
            self.fusion_epoch_size,
        )
        think, direct = self.think, self.direct
        return [think[i] if pool == COT else direct[i] for pool, i in order]

    def epoch(self, epoch: int) -> list[Example]:
        """The examples of epoch ``epoch`` in training order (parses every row: tests only)."""
        return [self.examples[i] for i in self.epoch_indices(epoch)]

    def batches(
        self, batch_size: int, start: Cursor = Cursor()
    ) -> Iterator[tuple[list[Example], Cursor]]:
        """Endless ``(batch, cursor after it)``; a batch may span an epoch boundary."""
        epoch, position = start.epoch, start.position
        order = self.epoch_indices(epoch)
        while True:
            batch: list[Example] = []
            while len(batch) < batch_size:
                if position >= len(order):
                    epoch, position = epoch + 1, 0
                    order = self.epoch_indices(epoch)
                take = min(batch_size - len(batch), len(order) - position)
                batch.extend(self.examples[i] for i in order[position : position + take])
                position += take
            yield batch, Cursor(epoch, position)
