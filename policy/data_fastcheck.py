"""Column-wise check of text-only tables: when every row of a file provably parses (sailrl's
schema or TRL prompt/completion as plain string columns, no images), the check needs no row
parsing at all and the think/direct modes come from vectorised Arrow kernels. Anything else
(nested columns, images, messages, a value that fails a test) returns None and the file is
checked row by row, which finds and names the bad rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policy.datasets_io import DataFile
from policy.schemas import rename

_TEXT = ("prompt", "answer", "response", "mode", "data_source", "domain")


def fast_modes(
    file: DataFile, fmt: str, columns: Mapping[str, str], require: Sequence[str]
) -> np.ndarray | None:
    """1 (think) / 0 (direct) per row if all rows of ``file`` are valid, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = file.table
    if table is None or fmt not in ("sailrl", "trl") or table.num_rows == 0:
        return None
    if any(not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
                or pa.types.is_floating(t)) for t in table.schema.types):  # fmt: skip
        return None  # lists, structs, bytes, booleans: parse the rows
    if set(rename(dict.fromkeys(table.column_names), columns)) & {"messages", "images"}:
        return None

    def col(key: str) -> Any:
        name = columns.get(key, key)
        if key == "response" and fmt == "trl":
            name = columns.get("response", "completion")
        return table.column(name) if name in table.column_names else None

    def is_text(c: Any) -> bool:
        return c is not None and (pa.types.is_string(c.type) or pa.types.is_large_string(c.type))

    def blank(c: Any) -> bool:
        return bool(pc.any(pc.equal(pc.utf8_trim_whitespace(c), "")).as_py())

    prompt, answer, response, mode = col("prompt"), col("answer"), col("response"), col("mode")
    if not is_text(prompt) or prompt.null_count or blank(prompt):
        return None
    if response is not None and not is_text(response):
        return None
    if any(c is not None and not is_text(c) for c in (mode, col("data_source"), col("domain"))):
        return None
    if fmt == "trl" and ("answer" in require or answer is not None):
        return None  # TRL answers come from the boxed response: parse the rows
    if fmt == "sailrl":
        have_answer = answer.is_valid() if answer is not None else None
        have_response = response.is_valid() if response is not None else None
        ok = have_answer if have_response is None else (
            have_response if have_answer is None else pc.or_(have_answer, have_response))  # fmt: skip
        if ok is None or not pc.all(ok).as_py():
            return None
        if "answer" in require and (answer is None or answer.null_count or (
                is_text(answer) and blank(answer))):  # fmt: skip
            return None
    if "response" in require and (response is None or response.null_count or blank(response)):
        return None
    if mode is not None:
        if not pc.all(pc.is_in(pc.fill_null(mode, ""), pa.array(["think", "direct", ""]))).as_py():
            return None
        return np.asarray(pc.not_equal(pc.fill_null(mode, ""), "direct"), dtype=np.int8)
    if fmt == "trl":
        return np.asarray(pc.match_substring(response, "<think>"), dtype=np.int8)
    return np.ones(table.num_rows, dtype=np.int8)
