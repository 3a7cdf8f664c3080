"""The run directory every stage writes: resolved config, JSONL metrics, TensorBoard, progress.

    runs/<name>/
      config.yaml      the resolved configuration
      metrics.jsonl    one JSON object per step, always with "step"
      tb/              TensorBoard event files
      samples.jsonl    a few completions per step (RL) when the stage logs them
      wandb/           Weights & Biases files, when ``run.wandb`` is set (optional extra)

Stages receive a ``RunLog`` (they never build one), so sft/ and policy/ stay free of it.

A run that starts from a checkpoint of step S passes ``resume_step=S``: rows of later steps
(written by the run that was cut off after that checkpoint) are dropped from every JSONL
file and TensorBoard purges them (``purge_step``), so each step appears once. Every row is
one ``os.write`` of a whole line to an ``O_APPEND`` file: a kill leaves whole lines only
(a torn last line, if a machine crash leaves one, is dropped on resume).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Literal

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


@dataclass
class WandbConfig:
    """``run.wandb``: also log to Weights & Biases (``pip install 'sailrl[wandb]'``).

    ``mode`` "offline" writes under ``<run>/wandb`` with no network (``wandb sync`` uploads
    later); "online" needs a login; "disabled" turns it off.
    """

    project: str = "sailrl"
    mode: Literal["online", "offline", "disabled"] = "offline"
    entity: str | None = None
    name: str | None = None  # default: the run directory's name

    def __post_init__(self) -> None:
        if self.mode not in ("online", "offline", "disabled"):
            raise ValueError(f"run.wandb.mode: {self.mode!r}; choose online, offline or disabled")


def _wandb_run(cfg: WandbConfig, run_dir: Path, config: Any):
    try:
        import wandb
    except ImportError as err:
        raise ValueError(
            "run.wandb is set but wandb is not installed: pip install 'sailrl[wandb]' "
            "(or remove run.wandb)"
        ) from err
    values = asdict(config) if is_dataclass(config) and not isinstance(config, type) else {}
    return wandb.init(
        project=cfg.project, entity=cfg.entity, name=cfg.name or run_dir.name, mode=cfg.mode,
        dir=str(run_dir), config=json.loads(json.dumps(values, default=str)),
        # one W&B run per run directory, continued on --resume
        resume="allow", id="sailrl-" + hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12],
    )  # fmt: skip


class RunLog:
    """Writes metrics to JSONL and TensorBoard (and W&B when ``config.run.wandb`` is set);
    ``progress`` wraps long loops with an ETA bar."""

    def __init__(
        self,
        run_dir: str | Path,
        config: Any | None = None,
        tensorboard: bool = True,
        resume_step: int | None = None,
    ):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            save_yaml(config, self.dir / "config.yaml")
        if resume_step is not None:
            for path in self.dir.glob("*.jsonl"):
                truncate_records(path, resume_step)
        self._files: dict[str, int] = {}
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(self.dir / "tb"), purge_step=purge)
        self._wandb = None
        wandb_cfg = getattr(getattr(config, "run", None), "wandb", None)
        if wandb_cfg is not None and wandb_cfg.mode != "disabled":
            self._wandb = _wandb_run(wandb_cfg, self.dir, config)
        self._t0 = time.time()

    def _append(self, name: str, rows: list[dict[str, Any]]) -> None:
        if name not in self._files:
            self._files[name] = os.open(
                self.dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
            )
        for row in rows:
            data = (json.dumps(row, default=str) + "\n").encode()
            written = os.write(self._files[name], data)
            while written < len(data):  # only on full disks / signals; finish the line
                written += os.write(self._files[name], data[written:])

    def log(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Append one step's metrics; non-scalar values are kept in JSONL only."""
        row: dict[str, Any] = {"step": int(step), "time_s": round(time.time() - self._t0, 3)}
        for key, value in metrics.items():
            num = _scalar(value)
            row[key] = value if num is None else num
            if self._tb is not None and num is not None and math.isfinite(num):
                self._tb.add_scalar(key, num, step)
        if self._wandb is not None:
            scalars = {k: v for k, v in row.items() if k != "step" and isinstance(v, int | float)}
            self._wandb.log(scalars, step=int(step))
        self._append("metrics.jsonl", [row])
        return row

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Append rows to ``<run>/<name>`` (e.g. sampled completions; each with "step")."""
        self._append(name, rows)

    def progress(self, total: int, desc: str, initial: int = 0) -> tqdm:
        return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, smoothing=0.1)

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files = {}
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_records(path: str | Path, step: int) -> int:
    """Keep the rows of ``path`` with ``"step" <= step`` (rows without a step stay) and drop a
    torn last line; rewritten atomically. Returns how many rows were dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1  # a line cut short by a crash
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > step:
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped
