"""Published dataset schemas mapped onto sailrl's record (see docs/data.md).

Each row of a file, whatever its schema, becomes one plain record with the keys of sailrl's
own schema (``prompt`` or ``messages``, ``answer``, ``images``, ``response``, ``mode``,
``data_source``, ``domain``, anything else kept as metadata); ``policy.data.parse_example``
then validates it. Pure functions, no IO:

    sailrl  prompt|messages + answer [+ images, response, mode, ...]
    hf-vqa  problem|question|query + answer|solution + images|image|decoded_image
            (geometry3k, MathV360K, ViRL39K, MathVista testmini)
    verl    prompt (message list) + reward_model.ground_truth [+ images, extra_info, ability]
    trl     prompt + completion (strings or message lists), or messages [+ images]
    llava   image + conversations [{from: human|gpt, value}]

    >>> detect_format(["images", "problem", "answer"])
    'hf-vqa'
    >>> to_record({"problem": "<image>x?", "answer": "\\\\boxed{3}"}, "hf-vqa")["answer"]
    '3'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMATS = ("sailrl", "hf-vqa", "verl", "trl", "llava")
# Keys of sailrl's record that ``data.columns`` may map onto a dataset's own column names.
MAPPABLE = ("prompt", "messages", "answer", "images", "response", "mode", "data_source", "domain")
_ROLE_OF = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
            "system": "system"}  # fmt: skip
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?\.?$")


class SchemaError(ValueError):
    """A file whose columns fit none of the known schemas, or a bad ``data.columns``."""


def detect_format(columns: Iterable[str], types: Mapping[str, str] | None = None) -> str:
    """The schema of a file from its column names (``types``: column -> "list" | "str" for
    the ``prompt`` column, which is a string in sailrl/TRL and a message list in verl)."""
    cols = set(columns)
    prompt_type = (types or {}).get("prompt")
    if "conversations" in cols:
        return "llava"
    if "reward_model" in cols and "prompt" in cols:
        return "verl"
    if "completion" in cols and "prompt" in cols:
        return "trl"
    if "messages" in cols and "answer" not in cols:
        return "trl"
    if ("prompt" in cols or "messages" in cols) and prompt_type != "list":
        return "sailrl"
    if cols & {"problem", "question", "query"}:
        return "hf-vqa"
    if "prompt" in cols:
        return "trl"
    raise SchemaError(
        f"columns {sorted(cols)} fit none of the schemas {list(FORMATS)}; name the format "
        "with data.format and map your columns with data.columns (docs/data.md)"
    )


def check_columns(mapping: Mapping[str, str]) -> None:
    """``data.columns`` keys must be sailrl record keys."""
    for key in mapping:
        if key not in MAPPABLE:
            raise SchemaError(
                f"data.columns: {key!r} is not a key sailrl reads; map one of {list(MAPPABLE)}"
            )


def rename(row: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """``row`` with each mapped dataset column under its sailrl key (``{prompt: problem}``)."""
    if not mapping:
        return row
    out = {k: v for k, v in row.items() if k not in mapping.values()}
    for key, column in mapping.items():
        if column in row:
            out[key] = row[column]
    return out


def boxed_answer(text: str) -> str | None:
    """The content of the last balanced ``\\boxed{...}`` in ``text`` (None if there is none).

    >>> boxed_answer("so x = \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    found = None
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found = text[start:i]
                break
    return found


def to_record(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    """One row of schema ``fmt`` (already renamed by ``data.columns``) as a sailrl record."""
    if fmt not in FORMATS:
        raise SchemaError(f"data.format: {fmt!r} is not one of {list(FORMATS)}")
    row = {k: v for k, v in row.items() if v is not None}
    record = {"sailrl": _sailrl, "hf-vqa": _hf_vqa, "verl": _verl, "trl": _trl,
              "llava": _llava}[fmt](row)  # fmt: skip
    answer = record.get("answer")
    if isinstance(record.get("messages"), list):
        record["messages"] = [_flat(m) for m in record["messages"]]
    if isinstance(answer, str) and "\\boxed" in answer:
        record["answer"] = boxed_answer(answer) or answer
    if record.get("answer") is None and isinstance(record.get("response"), str):
        # SFT-only schemas carry no reference answer; take the response's boxed one if any.
        record["answer"] = boxed_answer(record["response"]) or ""
    if "mode" not in record and isinstance(record.get("response"), str) and fmt != "sailrl":
        record["mode"] = "think" if "<think>" in record["response"] else "direct"
    return record


def _flat(message: Any) -> Any:
    """A message whose content is a list of typed parts (TRL's vision format:
    ``[{"type": "image"}, {"type": "text", "text": ".."}]``) as text with ``<image>`` markers."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    parts = []
    for part in message["content"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image":
            parts.append("<image>")
        elif kind == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            raise ValueError(f"message content part {part!r:.80} is neither text nor image")
    return {**message, "content": "".join(parts)}


def _images(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, list | tuple) else [value]


def _sailrl(row: dict[str, Any]) -> dict[str, Any]:
    if "images" in row:
        row["images"] = _images(row["images"])
    return row


def _hf_vqa(row: dict[str, Any]) -> dict[str, Any]:
    taken = {"images", "image", "decoded_image", "query", "problem", "question", "answer"}
    out = {k: v for k, v in row.items() if k not in taken}
    # MathVista: ``query`` is the full prompt (hint, question and choices); ``question`` bare.
    key = next((k for k in ("query", "problem", "question") if k in row), None)
    out["prompt"] = row.get(key) if key else None
    if key == "query" and "question" in row:
        out["question"] = row["question"]
    choices = row.get("choices")
    if choices and key != "query" and isinstance(out["prompt"], str):
        lines = [f"({chr(65 + i)}) {c}" for i, c in enumerate(choices)]
        out["prompt"] = out["prompt"] + "\nChoices:\n" + "\n".join(lines)
    answer = row["answer"] if "answer" in row else out.pop("solution", None)
    if isinstance(answer, str) and choices:
        # MathVista answers are the choice text; a bare letter is mapped onto its choice.
        letter = _LETTER.match(answer.strip())
        index = ord(letter.group(1).upper()) - 65 if letter else -1
        if 0 <= index < len(choices):
            answer = choices[index]
    out["answer"] = answer
    # Embedded bytes win over a path column (MathVista has both ``image`` and decoded_image).
    for key in ("images", "decoded_image", "image"):
        if row.get(key) is not None:
            out["images"] = _images(row[key])
            if key != "image" and isinstance(row.get("image"), str):
                out["image_path"] = row["image"]
            break
    return out


def _verl(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("prompt", "reward_model", "ability")}
    prompt = row.get("prompt")
    out["messages" if isinstance(prompt, list) else "prompt"] = prompt
    reward_model = row.get("reward_model") or {}
    truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
    if isinstance(truth, list):
        truth = truth[0] if len(truth) == 1 else truth
    out["answer"] = truth if truth is not None else row.get("answer")
    if "ability" in row:
        out.setdefault("domain", row["ability"])
    if "images" in row:
        out["images"] = _images(row["images"])
    return out


def _trl(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("prompt", "completion", "messages")}
    if "images" in row:
        out["images"] = _images(row["images"])
    if "messages" in row and "prompt" not in row:
        messages = list(row["messages"]) if isinstance(row["messages"], list) else row["messages"]
        if isinstance(messages, list) and messages and _is_assistant(messages[-1]):
            out["response"] = _flat(messages[-1]).get("content")
            messages = messages[:-1]
        out["messages"] = messages
        return out
    prompt, completion = row.get("prompt"), row.get("completion")
    out["messages" if isinstance(prompt, list) else "prompt"] = prompt
    if isinstance(completion, list):
        texts = [_flat(m).get("content") for m in completion if _is_assistant(m)]
        completion = texts[-1] if texts else None
    if completion is not None:
        out["response"] = completion
    return out


def _is_assistant(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "assistant"


def _llava(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("conversations", "image")}
    turns = row.get("conversations")
    if not isinstance(turns, list) or not turns:
        out["messages"] = turns
        return out
    messages = []
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in _ROLE_OF:
            who = turn.get("from") if isinstance(turn, dict) else turn
            raise ValueError(f"conversations[{k}].from is {who!r}; allowed: {sorted(_ROLE_OF)}")
        messages.append({"role": _ROLE_OF[turn["from"]], "content": turn.get("value")})
    if messages[-1]["role"] == "assistant":
        out["response"] = messages.pop()["content"]
    out["messages"] = messages
    if row.get("image") is not None:
        out["images"] = _images(row["image"])
    return out
