"""JSONL prompt files for ``sailrl rollout generate``, one prompt per line::

    {"id": "q1", "prompt": "What is 2+3?", "mode": "direct"}
    {"id": "q2", "prompt": "How many apples?", "images": ["img/apples.png"]}
    {"id": "q3", "messages": [{"role": "user", "content": "<image>\\nDescribe it."}],
     "images": ["a.png"], "mode": "think"}

``images`` are paths, relative to the prompt file's folder unless absolute. ``mode`` is
"think" (default) or "direct". ``id`` defaults to the line number.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from policy.vocab import MODES
from rollout.types import Completion, RolloutRequest


class PromptFileError(ValueError):
    """A malformed prompt file line; the message names file and line."""


def read_prompts(path: str | os.PathLike) -> list[RolloutRequest]:
    """The requests of a JSONL prompt file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"prompt file not found: {file}")
    requests = []
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                requests.append(_parse(line, f"{file}:{number}", file.parent, str(number)))
    if not requests:
        raise PromptFileError(f"{file} holds no prompts")
    ids = [r.prompt_id for r in requests]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PromptFileError(f"{file}: duplicate prompt ids {duplicates[:5]}")
    return requests


def _parse(line: str, where: str, base: Path, default_id: str) -> RolloutRequest:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise PromptFileError(f"{where}: not valid JSON ({err.msg})") from err
    if not isinstance(data, dict):
        raise PromptFileError(f"{where}: each line must be a JSON object")
    unknown = set(data) - {"id", "prompt", "messages", "images", "mode"}
    if unknown:
        raise PromptFileError(f"{where}: unknown keys {sorted(unknown)}")
    if ("prompt" in data) == ("messages" in data):
        raise PromptFileError(f"{where}: give exactly one of 'prompt' or 'messages'")
    prompt: Any = data.get("prompt")
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m
            for m in messages
        ):
            raise PromptFileError(f"{where}: 'messages' must be a list of {{role, content}}")
        prompt = tuple(messages)
    elif not isinstance(prompt, str):
        raise PromptFileError(f"{where}: 'prompt' must be a string")
    images = data.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise PromptFileError(f"{where}: 'images' must be a list of paths")
    mode = data.get("mode", "think")
    if mode not in MODES:
        raise PromptFileError(f"{where}: mode {mode!r} is not one of {MODES}")
    return RolloutRequest(
        prompt_id=str(data.get("id", default_id)),
        prompt=prompt,
        images=tuple(str(base / image) for image in images),
        mode=mode,
    )


def completion_record(completion: Completion) -> dict[str, Any]:
    """A JSON-ready dict of one completion (prompt ids left out, their count kept)."""
    record = asdict(completion)
    record["prompt_tokens"] = len(record.pop("prompt_token_ids"))
    record["token_ids"] = list(completion.token_ids)
    record["logprobs"] = list(completion.logprobs)
    return record
