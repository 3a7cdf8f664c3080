"""SFT training data: examples of the shared schema (``policy.data``) split into pools by
their ``mode``, read in the epoch order of the stage, with a resumable cursor.

    longcot: every example once per epoch, shuffled by (seed, epoch);
    fusion:  ``mixing.fusion_order`` over the direct pool and the think (CoT) pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from policy.data import Example, read_examples
from sft.mixing import COT, fusion_order, shuffled_order


@dataclass(frozen=True)
class Cursor:
    """Where the data stream stands: ``position`` examples into epoch ``epoch``."""

    epoch: int = 0
    position: int = 0


def load_sft_examples(files: Sequence[str]) -> list[Example]:
    """Examples of all ``files``; each must have a response (ValueError names file and entry)."""
    if not files:
        raise ValueError("sft.train_files: list at least one JSONL or parquet file of SFT examples")
    out: list[Example] = []
    for path in files:
        for k, example in enumerate(read_examples(path)):
            if not example.response:
                raise ValueError(
                    f"{path}: example {k + 1} has no 'response'; SFT needs the target completion "
                    "(RL prompt files have none)"
                )
            out.append(example)
    return out


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
        self.examples = list(examples)
        self.mode = mode
        self.seed = seed
        self.cot_fraction = cot_fraction
        self.fusion_epoch_size = fusion_epoch_size
        self.think = [e for e in self.examples if e.mode == "think"]
        self.direct = [e for e in self.examples if e.mode == "direct"]
        if not self.examples:
            raise ValueError("no SFT examples to train on")
        self.epoch_size = len(self.epoch(0))

    def epoch(self, epoch: int) -> list[Example]:
        """The examples of epoch ``epoch`` in training order."""
        if self.mode == "longcot":
            return [self.examples[i] for i in shuffled_order(len(self.examples), self.seed, epoch)]
        order = fusion_order(
            len(self.direct),
            len(self.think),
            self.cot_fraction,
            self.seed,
            epoch,
            self.fusion_epoch_size,
        )
        return [self.think[i] if pool == COT else self.direct[i] for pool, i in order]

    def batches(
        self, batch_size: int, start: Cursor = Cursor()
    ) -> Iterator[tuple[list[Example], Cursor]]:
        """Endless ``(batch, cursor after it)``; a batch may span an epoch boundary."""
        epoch, position = start.epoch, start.position
        order = self.epoch(epoch)
        while True:
            batch: list[Example] = []
            while len(batch) < batch_size:
                if position >= len(order):
                    epoch, position = epoch + 1, 0
                    order = self.epoch(epoch)
                take = min(batch_size - len(batch), len(order) - position)
                batch.extend(order[position : position + take])
                position += take
            yield batch, Cursor(epoch, position)
