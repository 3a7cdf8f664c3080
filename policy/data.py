"""The example record shared by SFT, RL and the offline jobs, and how data files become
examples (docs/data.md).

``read_examples(path, options)``: files (parquet, JSON lists, JSONL; a file, directory or
glob) are opened through Hugging Face ``datasets`` (``policy.datasets_io``), each file's
schema is detected from its columns or named (``policy.schemas``: sailrl, hf-vqa, verl,
trl, llava), and every row is checked once up front (``policy.data_check``). The result is
an ``ExampleSet`` (``policy.example_set``): a lazy sequence whose rows become ``Example``
records when read. Rows in sailrl's own schema:

- ``prompt`` (str) or ``messages`` (list of {"role", "content"}): the question;
- ``images`` (optional list of paths relative to the data file's directory, or
  ``{bytes, path}`` structs: bytes are decoded in memory);
- ``answer`` (str): the reference answer rewards compare with (optional with a response);
- ``response`` (optional str): the target completion for SFT;
- ``mode`` (optional, "think" or "direct", default "think");
- ``data_source`` / ``domain`` (optional str);
- any other key is kept in ``metadata``.

Every bad record is a ValueError naming the file and line (parquet: row) number.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from policy.datasets_io import DataFile, expand, open_file
from policy.schemas import SchemaError, check_columns, detect_format, rename
from policy.vocab import MODES

ROLES = ("system", "user", "assistant")
_KNOWN = {"prompt", "messages", "images", "answer", "response", "mode", "data_source", "domain"}


@dataclass(frozen=True)
class Example:
    """One training or evaluation example; ``images`` are absolute paths that exist or PIL
    images decoded in memory from a dataset's embedded bytes."""

    prompt: str | None
    messages: tuple[dict[str, str], ...] | None
    answer: str
    images: tuple[Any, ...] = ()
    response: str | None = None
    mode: str = "think"
    data_source: str | None = None
    domain: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str | tuple[dict[str, str], ...]:
        """What the processor takes as its prompt: the text or the messages."""
        return self.prompt if self.prompt is not None else self.messages


def parse_example(record: Any, base_dir: Path, where: str) -> Example:
    """Validate one decoded record; ``where`` ("file:line") prefixes every error."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    prompt, messages = record.get("prompt"), record.get("messages")
    if prompt is None and messages is None:
        raise ValueError(f"{where}: missing 'prompt' (a string) or 'messages' (a list)")
    if prompt is not None and messages is not None:
        raise ValueError(f"{where}: give either 'prompt' or 'messages', not both")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValueError(f"{where}: 'prompt' must be a non-empty string")
    parsed_messages = None if messages is None else _messages(messages, where)
    answer = record.get("answer")
    if answer is None and isinstance(record.get("response"), str):
        answer = ""  # an SFT example: the response is the target, no reference answer
    if answer is None:
        raise ValueError(f"{where}: missing 'answer' (the reference answer string)")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str):
        raise ValueError(f"{where}: 'answer' must be a string, got {type(answer).__name__}")
    mode = record.get("mode") or "think"
    if mode not in MODES:
        raise ValueError(f"{where}: 'mode' is {mode!r}; allowed: {list(MODES)}")
    response = record.get("response")
    if response is not None and not isinstance(response, str):
        raise ValueError(f"{where}: 'response' must be a string")
    return Example(
        prompt=prompt,
        messages=parsed_messages,
        answer=answer,
        images=_images(record.get("images"), base_dir, where),
        response=response,
        mode=mode,
        data_source=_optional_str(record, "data_source", where),
        domain=_optional_str(record, "domain", where),
        metadata={k: v for k, v in record.items() if k not in _KNOWN},
    )


def _messages(messages: Any, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for k, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ValueError(f"{where}: messages[{k}] needs a string 'content'")
        if message.get("role") not in ROLES:
            raise ValueError(
                f"{where}: messages[{k}].role is {message.get('role')!r}; allowed: {list(ROLES)}"
            )
        out.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "user" for m in out):
        raise ValueError(f"{where}: 'messages' has no message with role 'user'")
    return tuple(out)


def _images(images: Any, base_dir: Path, where: str) -> tuple[Any, ...]:
    if images is None:
        return ()
    if not isinstance(images, list):
        raise ValueError(f"{where}: 'images' must be a list of file paths or image structs")
    return tuple(_image(image, base_dir, where, k) for k, image in enumerate(images))


def _image(image: Any, base_dir: Path, where: str, k: int) -> Any:
    """A path that exists, or a PIL image decoded (lazily, in memory) from embedded bytes."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, dict):
        data, path = image.get("bytes"), image.get("path")
        if data is not None:
            return decode_image_bytes(data, f"{where}: images[{k}]")
        image = path
    if not isinstance(image, str) or not image:
        raise ValueError(
            f"{where}: images[{k}] must be a path or a {{bytes, path}} struct, got {image!r:.80}"
        )
    path = (base_dir / image).resolve()
    if not path.is_file():
        raise ValueError(
            f"{where}: image file not found: {path} (paths are relative to {base_dir})"
        )
    return str(path)


def decode_image_bytes(data: bytes, where: str) -> Image.Image:
    """A PIL image over ``data`` (only the header is read now; pixels when first used)."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        raise ValueError(f"{where}: the embedded bytes are no image format PIL knows") from err
    except OSError as err:
        raise ValueError(f"{where}: cannot decode the embedded image bytes ({err})") from err
    image.encoded_bytes = bytes(data)  # kept for writers that copy the image out
    return image


def _optional_str(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: '{key}' must be a string")
    return value


OnBadRow = Literal["error", "skip"]


@dataclass(frozen=True)
class ReadOptions:
    """How to read data files: ``format`` (None: detected from each file's columns),
    ``columns`` (sailrl key -> the dataset's column, e.g. ``{prompt: problem}``), and what
    a bad row does: ``error`` (stop, naming file:row) or ``skip`` (drop it and count it; stop
    if more than ``max_bad_fraction`` of the rows are bad)."""

    format: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    on_bad_row: OnBadRow = "error"
    max_bad_fraction: float = 0.01
    # Relative image paths are relative to this directory (default: each data file's own).
    image_root: str | None = None

    def __post_init__(self) -> None:
        from policy.schemas import FORMATS

        if self.format is not None and self.format not in FORMATS:
            raise SchemaError(f"data.format: {self.format!r} is not one of {list(FORMATS)}")
        check_columns(self.columns)
        if self.on_bad_row not in ("error", "skip"):
            raise SchemaError(f"data.on_bad_row: {self.on_bad_row!r}; choose 'error' or 'skip'")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise SchemaError(
                f"data.max_bad_fraction: must lie in [0, 1], got {self.max_bad_fraction}"
            )


def open_examples(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    options: ReadOptions | None = None,
    cache: Path | None = None,
):
    """An ``ExampleSet`` over the files at ``path`` (a file, directory or glob, or a list of
    them), unchecked: rows are parsed when read."""
    from policy.example_set import ExampleSet

    opts = options or ReadOptions()
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    files = [open_file(f, cache) for p in paths for f in expand(p)]
    formats = [opts.format or _detect(f, opts.columns) for f in files]
    return ExampleSet(files, formats, dict(opts.columns), image_root=opts.image_root)


def _detect(file: DataFile, columns: Mapping[str, str]) -> str:
    names = set(rename(dict.fromkeys(file.columns), columns))
    kind = file.column_kind(columns.get("prompt", "prompt"))
    try:
        return detect_format(names, {"prompt": kind} if kind else None)
    except SchemaError as err:
        raise SchemaError(f"{file.path}: {err}") from err


def read_examples(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    options: ReadOptions | None = None,
    cache: Path | None = None,
    require: Sequence[str] = (),
):
    """The examples at ``path``, every row parsed and every image verified once up front
    (``policy.data_check``); a bad row raises DataError (a ValueError) naming file:row, or
    is dropped and counted with ``on_bad_row: skip``. ``require``: fields every row needs
    (``answer`` for RL, ``response`` for SFT). The result is a lazy ``Sequence[Example]``
    whose ``report`` holds the counts."""
    from policy.data_check import check_examples

    opts = options or ReadOptions()
    return check_examples(open_examples(path, opts, cache), opts, require)


def write_examples(path: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """Write raw records as JSONL (helper for generators and tests)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return file
