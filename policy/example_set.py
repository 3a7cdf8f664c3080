"""``ExampleSet``: a lazy ``Sequence[Example]`` over memory-mapped data files.

A row becomes an ``Example`` only when it is read (indexing, slicing, iterating), so a
million-row SFT set costs its Arrow pages, not a million Python objects. ``drop`` gives the
set without some rows (``on_bad_row: skip``); ``modes`` (filled by the up-front check) lets
SFT split think/direct pools without parsing rows again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policy.data import Example, parse_example
from policy.datasets_io import DataFile
from policy.schemas import SchemaError, rename, to_record


class ExampleSet(Sequence):
    """Examples of ``files`` (schema ``formats[i]`` each), renamed by ``columns``."""

    def __init__(
        self,
        files: list[DataFile],
        formats: list[str],
        columns: dict[str, str],
        keep: np.ndarray | None = None,
        image_root: str | os.PathLike | None = None,
    ) -> None:
        self.files, self.formats, self.columns = files, formats, columns
        self._offsets = np.cumsum([0] + [len(f) for f in files])
        self._keep = keep
        self.image_root = image_root
        root = Path(image_root).resolve() if image_root else None
        self._bases = [root or f.path.resolve().parent for f in files]
        self.modes: np.ndarray | None = None  # 1 = think, 0 = direct, per row (after check)
        self.report: Any = None  # policy.data_check.DataReport once checked

    @property
    def format(self) -> str:
        return "+".join(dict.fromkeys(self.formats))

    @property
    def total_rows(self) -> int:
        """Rows in the files, dropped ones included."""
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return len(self._keep) if self._keep is not None else self.total_rows

    def _locate(self, i: int) -> tuple[int, int]:
        g = int(self._keep[i]) if self._keep is not None else i
        f = int(np.searchsorted(self._offsets, g, side="right")) - 1
        return f, g - int(self._offsets[f])

    def where(self, i: int) -> str:
        f, local = self._locate(i)
        return self.files[f].where(local)

    def parse(self, f: int, local: int, row: dict[str, Any]) -> Example:
        """Row ``local`` of file ``f`` as an Example (ValueError naming file:row)."""
        where = self.files[f].where(local)
        try:
            record = to_record(rename(row, self.columns), self.formats[f])
        except SchemaError:
            raise
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
        return parse_example(record, self._bases[f], where)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"example {i} out of range ({len(self)} examples)")
        f, local = self._locate(i)
        return self.parse(f, local, self.files[f].row(local))

    def __iter__(self) -> Iterator[Example]:
        if self._keep is not None:
            for i in range(len(self)):
                yield self[i]
            return
        for f, file in enumerate(self.files):
            local = 0
            for batch in file.batches():
                for row in batch:
                    yield self.parse(f, local, row)
                    local += 1

    def rows(self) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """(file index, row in file, raw row) of every row in the files, in batches."""
        for f, file in enumerate(self.files):
            local = 0
            for batch in file.batches():
                for row in batch:
                    yield f, local, row
                    local += 1

    def drop(self, bad: Sequence[int]) -> ExampleSet:
        """This set without the rows at global indices ``bad`` (indices into the files)."""
        base = self._keep if self._keep is not None else np.arange(self.total_rows)
        keep = np.setdiff1d(base, np.asarray(list(bad), dtype=np.int64), assume_unique=True)
        out = ExampleSet(self.files, self.formats, self.columns, keep, self.image_root)
        if self.modes is not None:
            out.modes = self.modes[np.isin(base, keep)]
        return out

    def global_index(self, f: int, local: int) -> int:
        return int(self._offsets[f]) + local

    def paths(self) -> list[Path]:
        return [file.path for file in self.files]
