"""Output rows of the offline jobs (``sample``, ``filter``), written as they are produced and
resumable after a crash without duplicates.

    out.jsonl    rows appended chunk by chunk; images as files in ``<out stem>_images/``
                 (paths relative to the output file), never bytes in JSON
    out.parquet  one part file per chunk in ``<out>.parts/``, joined into ``out.parquet`` at
                 the end; images as ``{bytes, path}`` structs (what ``datasets`` writes)
    <out>.progress.jsonl  one line per finished chunk: its input indices, the job's counters
                 and where the output stood; removed when the job completes

A rerun with a progress file continues: the output is cut back to the last finished chunk
(dropping rows of a chunk that was being written when the job died) and the finished input
indices are skipped.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image


def example_row(ex: Any, **extra: Any) -> dict[str, Any]:
    """A ``policy.data.Example`` as a row of sailrl's own schema (plus ``extra`` keys)."""
    row: dict[str, Any] = {"prompt": ex.prompt} if ex.prompt is not None else {
        "messages": list(ex.messages)}  # fmt: skip
    row.update(images=list(ex.images), answer=ex.answer, mode=ex.mode)
    if ex.response is not None:
        row["response"] = ex.response
    if ex.data_source:
        row["data_source"] = ex.data_source
    if ex.domain:
        row["domain"] = ex.domain
    row.update(ex.metadata)
    row.update(extra)
    return row


class RowWriter:
    """Chunked, resumable writer of output rows to ``out`` (.jsonl or .parquet)."""

    def __init__(self, out: str | os.PathLike, embed_files: bool = False) -> None:
        self.out = Path(out)
        self.embed_files = embed_files  # parquet: image files become bytes too
        self.parquet = self.out.suffix == ".parquet"
        self.progress = self.out.with_name(self.out.name + ".progress.jsonl")
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.images = self.out.with_name(self.out.stem + "_images")
        self.done: set[int] = set()
        self.counts: dict[str, int] = {}
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._resume() if self.progress.exists() else self._fresh()

    def _fresh(self) -> None:
        shutil.rmtree(self.parts, ignore_errors=True)
        if not self.parquet:
            self.out.write_text("")
        self._offset = 0

    def _resume(self) -> None:
        self._offset, n_parts = 0, 0
        for line in self.progress.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # the last line was being written when the job died
            self.done.update(entry["done"])
            for key, value in entry["counts"].items():
                self.counts[key] = self.counts.get(key, 0) + value
            self._offset, n_parts = entry.get("offset", 0), entry.get("parts", 0)
        if self.parquet:
            for part in sorted(self.parts.glob("*.parquet"))[n_parts:]:
                part.unlink()
        else:
            with self.out.open("r+b") as fh:
                fh.truncate(self._offset)
        self._n_parts = n_parts

    def check(self, row: dict[str, Any]) -> None:
        """Fail now, before any work, if a row like ``row`` cannot be written."""
        self._encode(dict(row), "check", dry=True)

    def write_chunk(self, indices: Iterable[int], rows: list[dict[str, Any]],
                    counts: dict[str, int]) -> None:  # fmt: skip
        """Rows of a finished chunk of input ``indices``, then its progress line."""
        indices = list(indices)
        encoded = [self._encode(r, f"{indices[0]}_{k}") for k, r in enumerate(rows)]
        entry: dict[str, Any] = {"done": indices, "counts": counts}
        if self.parquet:
            n = getattr(self, "_n_parts", 0)
            if encoded:
                import pyarrow as pa
                import pyarrow.parquet as pq

                self.parts.mkdir(parents=True, exist_ok=True)
                pq.write_table(pa.Table.from_pylist(encoded), self.parts / f"{n:06d}.parquet")
                n += 1
            self._n_parts = entry["parts"] = n
        else:
            with self.out.open("a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in encoded))
                fh.flush()
                os.fsync(fh.fileno())
                entry["offset"] = fh.tell()
        with self.progress.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.done.update(indices)
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def finish(self) -> Path:
        """Join the parquet parts (if any) and drop the progress file; the output is final."""
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            parts = sorted(self.parts.glob("*.parquet"))
            tables = [pq.read_table(p) for p in parts]
            table = pa.concat_tables(tables, promote_options="permissive") if tables else (
                pa.table({}))  # fmt: skip
            tmp = self.out.with_name(self.out.name + ".tmp")
            pq.write_table(_with_image_features(table), tmp)
            tmp.replace(self.out)
            shutil.rmtree(self.parts, ignore_errors=True)
        self.progress.unlink(missing_ok=True)
        return self.out

    def _encode(self, row: dict[str, Any], key: str, dry: bool = False) -> dict[str, Any]:
        row = dict(row)
        row["images"] = [
            self._image(im, f"{key}_{k}", dry) for k, im in enumerate(row.get("images") or [])
        ]
        if self.parquet:
            return row
        for name, value in row.items():
            if isinstance(value, bytes | bytearray | memoryview):
                raise ValueError(
                    f"{self.out}: column {name!r} holds bytes, which JSON cannot keep; "
                    "write parquet instead (--out FILE.parquet)"
                )
        json.dumps(row)  # raises now (TypeError) for values JSON cannot hold
        return row

    def _image(self, image: Any, key: str, dry: bool) -> Any:
        if isinstance(image, Image.Image):
            data = getattr(image, "encoded_bytes", None)
            ext = (image.format or "png").lower() if data else "png"
            data = data or _png(image)
            if self.parquet:
                return {"bytes": data, "path": None}
            path = self.images / f"{key}.{ext}"
            if not dry:
                self.images.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            return os.path.relpath(path, self.out.parent)
        rel = os.path.relpath(os.fspath(image), self.out.parent)
        if self.parquet and self.embed_files:
            return {"bytes": Path(image).read_bytes(), "path": os.path.basename(rel)}
        return {"bytes": None, "path": rel} if self.parquet else rel


def _with_image_features(table):
    """``table`` with the ``datasets`` schema metadata that marks ``images`` as a list of
    Image features, so ``datasets.load_dataset`` decodes them like the published sets."""
    import pyarrow as pa
    from datasets import Features, List
    from datasets import Image as ImageFeature

    field = table.schema.field("images") if "images" in table.column_names else None
    if field is None or not pa.types.is_list(field.type) or not pa.types.is_struct(
            field.type.value_type):  # fmt: skip
        return table
    storage = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    index = table.column_names.index("images")
    table = table.set_column(index, "images", table.column("images").cast(storage))
    features = Features.from_arrow_schema(table.schema)
    features["images"] = List(ImageFeature())
    meta = {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
