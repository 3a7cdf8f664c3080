"""The example schema shared by SFT and RL data (JSONL or parquet), see docs/data.md.

One JSON object per line:

- ``prompt`` (str) or ``messages`` (list of {"role", "content"}): the question;
- ``images`` (optional list of paths, relative to the data file's directory);
- ``answer`` (str): the reference answer rewards compare with;
- ``response`` (optional str): the target completion for SFT;
- ``mode`` (optional, "think" or "direct", default "think");
- ``data_source`` / ``domain`` (optional str);
- any other key is kept in ``metadata``.

Every bad record raises ValueError naming the file and line (parquet: row) number.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("think", "direct")
ROLES = ("system", "user", "assistant")
_KNOWN = {"prompt", "messages", "images", "answer", "response", "mode", "data_source", "domain"}


@dataclass(frozen=True)
class Example:
    """One training or evaluation example; ``images`` are absolute paths that exist."""

    prompt: str | None
    messages: tuple[dict[str, str], ...] | None
    answer: str
    images: tuple[str, ...] = ()
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


def _images(images: Any, base_dir: Path, where: str) -> tuple[str, ...]:
    if images is None:
        return ()
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise ValueError(f"{where}: 'images' must be a list of file paths")
    resolved = []
    for image in images:
        path = (base_dir / image).resolve()
        if not path.is_file():
            raise ValueError(
                f"{where}: image file not found: {path} (paths are relative to {base_dir})"
            )
        resolved.append(str(path))
    return tuple(resolved)


def _optional_str(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: '{key}' must be a string")
    return value


def read_examples(path: str | os.PathLike) -> list[Example]:
    """All examples of a ``.jsonl`` or ``.parquet`` file (FileNotFoundError if absent)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"data file not found: {file}")
    base_dir = file.resolve().parent
    if file.suffix == ".parquet":
        return _read_parquet(file, base_dir)
    examples = []
    with file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{file}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{where}: invalid JSON ({err.msg} at column {err.colno})"
                ) from err
            examples.append(parse_example(record, base_dir, where))
    return examples


def _read_parquet(file: Path, base_dir: Path) -> list[Example]:
    import pyarrow.parquet as pq

    rows = pq.read_table(file).to_pylist()
    # Parquet fills absent columns with None; drop them so optional keys stay optional.
    return [
        parse_example({k: v for k, v in row.items() if v is not None}, base_dir, f"{file}:row {n}")
        for n, row in enumerate(rows, start=1)
    ]


def write_examples(path: str | os.PathLike, records: list[dict[str, Any]]) -> Path:
    """Write raw records as JSONL (helper for generators and tests)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return file
