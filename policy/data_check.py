"""The up-front check of a data set: every row parsed and every image opened and verified once
(header, chunk checksums and size; pixels are not decoded), before any work starts.

``check_examples`` returns the set (without its bad rows under ``on_bad_row: skip``) with a
``DataReport``: rows, rows with images, images, and the bad rows with their reasons, counted
per file. Under ``on_bad_row: error`` the first bad row raises ``DataError`` naming file:row.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from policy.data_fastcheck import fast_modes

log = logging.getLogger(__name__)
MIN_IMAGE_SIDE = 2  # pixels; smaller images are reported as bad rows
_REQUIRED = {
    "answer": "no reference answer (RL rewards compare with it; map it with data.columns)",
    "response": "no 'response' (SFT needs the target completion; RL prompt files have none)",
}


class DataError(ValueError):
    """Bad rows in a data set; the message names file:row and the reason."""


@dataclass(frozen=True)
class BadRow:
    where: str
    reason: str


@dataclass
class DataReport:
    """What the check found; ``to_dict`` is what ``sailrl data inspect`` prints last."""

    format: str
    files: list[str]
    rows: int = 0
    rows_with_images: int = 0
    images: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_per_file: dict[str, int] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)

    def to_dict(self, max_listed: int = 20) -> dict[str, Any]:
        out = asdict(self)
        out["bad_rows"] = len(self.bad_rows)
        out["bad_examples"] = [asdict(b) for b in self.bad_rows[:max_listed]]
        return out


def verify_image(image: Any) -> str | None:
    """Why ``image`` (a path or a PIL image over embedded bytes) is unusable, or None."""
    try:
        if isinstance(image, Image.Image):
            data = getattr(image, "encoded_bytes", None)
            if data is None:
                return _size_problem(image.size)
            with Image.open(io.BytesIO(data)) as opened:
                size = opened.size
                opened.verify()
        else:
            with Image.open(image) as opened:
                size = opened.size
                opened.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        return f"undecodable image {_name(image)}: {err}"
    return _size_problem(size, _name(image))


def _name(image: Any) -> str:
    return "(embedded bytes)" if isinstance(image, Image.Image) else str(image)


def _size_problem(size: tuple[int, int], name: str = "(embedded bytes)") -> str | None:
    if min(size) < MIN_IMAGE_SIDE:
        return f"image {name} is {size[0]}x{size[1]} px (under {MIN_IMAGE_SIDE} px)"
    return None


def check_examples(examples, options, require: Sequence[str] = ()):
    """``examples`` (an ExampleSet) checked row by row; see the module docstring."""
    report = DataReport(examples.format, [str(p) for p in examples.paths()])
    bad: list[int] = []
    modes = np.zeros(examples.total_rows, dtype=np.int8)
    for f, file in enumerate(examples.files):
        start = examples.global_index(f, 0)
        fast = fast_modes(file, examples.formats[f], examples.columns, require)
        if fast is not None:  # every row proven valid by column checks: nothing to parse
            report.rows += len(fast)
            modes[start : start + len(fast)] = fast
            continue
        local = 0
        for batch in file.batches():
            for row in batch:
                report.rows += 1
                reason = _check_row(examples, f, local, row, require, modes, report)
                if reason is not None:
                    where = file.where(local)
                    if options.on_bad_row == "error":
                        raise DataError(
                            f"{where}: {reason} (data.on_bad_row: skip drops bad rows instead)"
                        )
                    bad.append(start + local)
                    report.bad_rows.append(BadRow(where, reason))
                    report.bad_per_file[str(file.path)] = (
                        report.bad_per_file.get(str(file.path), 0) + 1
                    )
                local += 1
    examples.modes = modes
    if bad:
        _report_skipped(report, options.max_bad_fraction)
        examples = examples.drop(bad)
    kept_modes = examples.modes
    report.modes = {
        "think": int(kept_modes.sum()),
        "direct": int(len(kept_modes) - kept_modes.sum()),
    }
    examples.report = report
    return examples


def _check_row(examples, f, local, row, require, modes, report) -> str | None:
    """Why row ``local`` of file ``f`` is bad, or None (then its mode and images are counted)."""
    try:
        ex = examples.parse(f, local, row)
    except ValueError as err:
        return str(err).removeprefix(f"{examples.files[f].where(local)}: ")
    modes[examples.global_index(f, local)] = ex.mode == "think"
    reason = next((_REQUIRED[k] for k in require if not getattr(ex, k)), None)
    if reason is None and ex.images:
        report.rows_with_images += 1
        report.images += len(ex.images)
        reason = next(filter(None, map(verify_image, ex.images)), None)
    return reason


def _report_skipped(report: DataReport, max_fraction: float) -> None:
    for name, count in report.bad_per_file.items():
        log.warning("%s: %d bad rows skipped (first: %s)", name, count,
                    next(b for b in report.bad_rows if b.where.startswith(name)).reason)  # fmt: skip
    fraction = len(report.bad_rows) / max(1, report.rows)
    if fraction > max_fraction:
        first = report.bad_rows[0]
        raise DataError(
            f"{len(report.bad_rows)} of {report.rows} rows are bad ({fraction:.1%}, more than "
            f"data.max_bad_fraction={max_fraction}); first: {first.where}: {first.reason}"
        )
