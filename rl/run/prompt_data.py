"""The data of a run, read and checked before any actor starts (docs/data.md).

Every row is parsed and every image verified once (``policy.data_check``); a bad row is a
ConfigError naming the key and file:row (the CLI exits 2), or, with ``on_bad_row: skip``,
is dropped and counted (``data/bad_rows`` in the metrics, a warning per file in the log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policy.data import ReadOptions, read_examples
from rl.config import ConfigError

log = logging.getLogger(__name__)


def load_checked(
    path: str | Sequence[str], options: ReadOptions, key: str, require: Sequence[str] = ()
):
    """``read_examples`` with every data error as a ConfigError naming ``key``."""
    try:
        examples = read_examples(path, options, require=require)
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from err
    report = examples.report
    log.info("%s: %s, %d rows (%d with images, %d images), %d bad rows skipped", key,
             report.format, report.rows, report.rows_with_images, report.images,
             len(report.bad_rows))  # fmt: skip
    return examples


def bad_row_counts(**sets: Any) -> dict[str, int]:
    """``{data/bad_rows: total, data/bad_rows/<name>: ...}`` for the metrics."""
    counts = {f"data/bad_rows/{name}": len(s.report.bad_rows) for name, s in sets.items() if s}
    return {"data/bad_rows": sum(counts.values()), **counts}


def write_report(run_dir: Path, **sets: Any) -> None:
    """``<run>/data_report.json``: what the check found in each data set."""
    run_dir.mkdir(parents=True, exist_ok=True)
    reports = {name: s.report.to_dict() for name, s in sets.items() if s}
    (run_dir / "data_report.json").write_text(json.dumps(reports, indent=2) + "\n")
