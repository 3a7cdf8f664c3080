"""The run directory every stage writes: resolved config, JSONL metrics, TensorBoard, progress.

    runs/<name>/
      config.yaml      the resolved configuration
      metrics.jsonl    one JSON object per step, always with "step"
      tb/              TensorBoard event files
      samples.jsonl    a few completions per step (RL) when the stage logs them

Stages receive a ``RunLog`` (they never build one), so sft/ and policy/ stay free of it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rl.config import save_yaml


def _scalar(value: Any) -> float | int | None:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return None


class RunLog:
    """Writes metrics to JSONL and TensorBoard; ``progress`` wraps long loops with an ETA bar."""

    def __init__(self, run_dir: str | Path, config: Any | None = None, tensorboard: bool = True):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            save_yaml(config, self.dir / "config.yaml")
        self._metrics = open(self.dir / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.dir / "tb"))
        self._t0 = time.time()

    def log(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Append one step's metrics; non-scalar values are kept in JSONL only."""
        row: dict[str, Any] = {"step": int(step), "time_s": round(time.time() - self._t0, 3)}
        for key, value in metrics.items():
            num = _scalar(value)
            row[key] = value if num is None else num
            if self._tb is not None and num is not None and math.isfinite(num):
                self._tb.add_scalar(key, num, step)
        self._metrics.write(json.dumps(row, default=str) + "\n")
        return row

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Append rows to ``<run>/<name>`` (e.g. sampled completions)."""
        with open(self.dir / name, "a") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str) + "\n")

    def progress(self, total: int, desc: str, initial: int = 0) -> tqdm:
        return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, smoothing=0.1)

    def close(self) -> None:
        self._metrics.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
