"""Data files opened through Hugging Face ``datasets``: parquet, JSON (a list of objects, as
LLaVA publishes) and JSONL, given as a file, a directory or a glob.

Each file becomes a ``DataFile`` over a memory-mapped Arrow table (``datasets`` converts it
once into its cache; later opens of the same file reuse it), so rows are Python objects only
while they are read. Image columns come back raw, as ``{bytes, path}`` structs or path
strings: decoding is sailrl's (``policy.data``). The cache lives in ``$SAILRL_DATASETS_CACHE``
(default: ``<tmp>/sailrl-datasets-<uid>``), never in the home directory, and the hub is never
contacted (``HF_DATASETS_OFFLINE=1``).

A JSON file whose rows disagree on a column's type (a number in one row, a string in the
next) has no Arrow schema; it is read line by line instead, with errors naming the line.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".arrow": "arrow"}


def cache_dir() -> Path:
    """Where ``datasets`` keeps its Arrow copies of the data files."""
    env = os.environ.get("SAILRL_DATASETS_CACHE")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(env) if env else Path(tempfile.gettempdir()) / f"sailrl-datasets-{uid}"


def expand(path: str | os.PathLike) -> list[Path]:
    """The data files named by ``path``: a file, every data file of a directory, or a glob."""
    text = os.fspath(path)
    p = Path(text)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
    elif glob.has_magic(text):
        found = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
    else:
        raise FileNotFoundError(f"data file not found: {p}")
    if not found:
        raise FileNotFoundError(f"no data files ({', '.join(SUFFIXES)}) under {text!r}")
    return found


def _datasets():
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    datasets.config.HF_DATASETS_OFFLINE = True
    datasets.disable_progress_bars()
    # Errors are raised (and named by file and row) here; datasets' own log lines would
    # only repeat them, e.g. for JSONL that falls back to the line-by-line reader.
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    return datasets


@dataclass
class DataFile:
    """One data file: ``table`` (memory-mapped Arrow) or, for untyped JSON, ``rows``."""

    path: Path
    table: Any = None  # pyarrow.Table
    rows: list[dict[str, Any]] | None = None
    line_numbers: list[int] | None = None

    def __len__(self) -> int:
        return len(self.rows) if self.rows is not None else self.table.num_rows

    @property
    def columns(self) -> list[str]:
        if self.rows is not None:
            return list(dict.fromkeys(k for r in self.rows[:1000] for k in r))
        return list(self.table.column_names)

    def column_kind(self, name: str) -> str | None:
        """ "list", "str" or None: the type of column ``name`` (from the first rows if untyped)."""
        if self.rows is not None:
            value = next((r[name] for r in self.rows[:1000] if r.get(name) is not None), None)
            return "list" if isinstance(value, list) else "str" if isinstance(value, str) else None
        if name not in self.table.column_names:
            return None
        import pyarrow as pa

        kind = self.table.schema.field(name).type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return "list"
        return "str" if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None

    def row(self, i: int) -> dict[str, Any]:
        if self.rows is not None:
            return dict(self.rows[i])
        return self.table.slice(i, 1).to_pylist()[0]

    def batches(self, size: int = 512) -> Iterator[list[dict[str, Any]]]:
        """All rows in order, ``size`` at a time (only one batch is Python objects at once)."""
        if self.rows is not None:
            for start in range(0, len(self.rows), size):
                yield [dict(r) for r in self.rows[start : start + size]]
            return
        for batch in self.table.to_batches(max_chunksize=size):
            yield batch.to_pylist()

    def where(self, i: int) -> str:
        """``file:line`` (JSONL) or ``file:row N`` of row ``i`` (0-based), for messages."""
        if self.path.suffix != ".jsonl":
            return f"{self.path}:row {i + 1}"
        if self.line_numbers is None:
            with self.path.open(encoding="utf-8") as fh:
                self.line_numbers = [n for n, line in enumerate(fh, start=1) if line.strip()]
        return f"{self.path}:{self.line_numbers[i]}" if i < len(self.line_numbers) else (
            f"{self.path}:row {i + 1}")  # fmt: skip


def open_file(path: Path, cache: Path | None = None) -> DataFile:
    """``path`` through ``datasets`` (memory-mapped Arrow), or line by line for untyped JSON."""
    kind = SUFFIXES.get(path.suffix)
    if kind is None:
        raise ValueError(f"{path}: unknown data file type; use one of {', '.join(SUFFIXES)}")
    datasets = _datasets()
    import pyarrow as pa

    if kind == "json":
        _check_utf8(path)  # Arrow's JSON reader does not, and fails later without a name
    try:
        ds = datasets.load_dataset(
            kind, data_files=str(path.resolve()), split="train",
            cache_dir=str(cache or cache_dir()),
        )  # fmt: skip
    except (datasets.exceptions.DatasetGenerationError, pa.ArrowInvalid, pa.ArrowTypeError,
            ValueError, TypeError) as err:  # fmt: skip
        if kind != "json":
            raise ValueError(f"{path}: cannot be read as {kind}: {err}") from err
        return _read_json_lines(path)
    return DataFile(path, table=ds.data.table)


def _check_utf8(path: Path, chunk: int = 1 << 20) -> None:
    """ValueError naming ``path`` and the line of the first byte that is not UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, offset = 1, 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                line = lines + block.count(b"\n", 0, max(0, err.start))
                raise ValueError(
                    f"{path}:{line}: not UTF-8 text ({err.reason} at byte {offset + err.start})"
                ) from None
            lines += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{path}: not UTF-8 text (truncated at the end: {err.reason})"
            ) from None


def _read_json_lines(path: Path) -> DataFile:
    """A JSON list or JSONL file held as Python rows, each error naming its line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
        for k, record in enumerate(records):
            if not isinstance(record, dict):
                raise ValueError(f"{path}:row {k + 1}: expected a JSON object")
        return DataFile(path, rows=records, line_numbers=None)
    rows, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno})"
            ) from err
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}:{number}: expected a JSON object, got {type(record).__name__}"
            )
        rows.append(record)
        numbers.append(number)
    return DataFile(path, rows=rows, line_numbers=numbers)
