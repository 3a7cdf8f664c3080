"""Atomic checkpoint directories for every stage.

    <run>/checkpoints/
      step-000010/      complete checkpoint (has COMPLETE)
      step-000020/
      latest            text file naming the newest complete checkpoint

A save writes into ``.tmp-step-NNNNNN``, marks it COMPLETE, renames it into place, then
points ``latest`` at it and only then prunes older checkpoints. A crash at any moment leaves
the previous checkpoint loadable: an unfinished temporary directory is never picked up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One error for a checkpoint that cannot be used (a model directory or a run checkpoint).
from policy.checkpoint_error import CheckpointError

COMPLETE = "COMPLETE"
STATE = "state.json"
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointManager:
    """Saves and finds checkpoints under ``root``; keeps the newest ``keep`` of them."""

    def __init__(self, root: str | Path, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.root = Path(root)
        self.keep = keep

    def save(self, step: int, write: Callable[[Path], None], state: dict[str, Any]) -> Path:
        """Call ``write(tmp_dir)`` to fill a checkpoint, then publish it atomically.

        ``state`` (step, data cursor, statistics; JSON-serialisable) is stored as state.json.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / step_dir_name(step)
        tmp = self.root / f".tmp-{step_dir_name(step)}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        write(tmp)
        (tmp / STATE).write_text(json.dumps({**state, "step": step}, indent=1, default=str))
        (tmp / COMPLETE).write_text("ok\n")
        _fsync_dir(tmp)
        if final.exists():  # re-saving the same step (e.g. after resume): replace it
            old = self.root / f".old-{step_dir_name(step)}"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        pointer = self.root / ".latest.tmp"
        pointer.write_text(final.name + "\n")
        os.replace(pointer, self.root / "latest")
        _fsync_dir(self.root)
        self._prune()
        return final

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / COMPLETE).is_file():
                found.append((int(match.group(1)), child))
        return [path for _, path in sorted(found)]

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None when there is none."""
        pointer = self.root / "latest"
        if pointer.is_file():
            named = self.root / pointer.read_text().strip()
            if (named / COMPLETE).is_file():
                return named
        done = self.complete()
        return done[-1] if done else None

    def _prune(self) -> None:
        done = self.complete()
        for path in done[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)
        for stale in self.root.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)


def read_state(checkpoint: str | Path) -> dict[str, Any]:
    """The state.json of a complete checkpoint; clear errors for incomplete or corrupt ones."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise CheckpointError(f"checkpoint {checkpoint} does not exist")
    if not (checkpoint / COMPLETE).is_file():
        raise CheckpointError(
            f"checkpoint {checkpoint} is incomplete (no {COMPLETE} marker): it was interrupted "
            "while being written; resume from an earlier one"
        )
    try:
        return json.loads((checkpoint / STATE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {checkpoint}: {STATE} is unreadable: {err}") from err


def resolve_reference(path: str | Path) -> Path:
    """A model directory from what a user may type for one: a checkpoint or model dir
    itself, ``<checkpoints>/latest`` (the pointer file), ``<checkpoints>/<step>`` (``10``
    means ``step-000010``), a ``checkpoints`` dir or a run dir (their latest checkpoint).
    Other paths come back unchanged, for the caller's own "not found" error.

    >>> resolve_reference("runs/none/checkpoints/latest")
    PosixPath('runs/none/checkpoints/latest')
    """
    path = Path(path)
    if path.name == "latest" and path.is_file():
        named = path.parent / path.read_text().strip()
        if not (named / COMPLETE).is_file():
            raise CheckpointError(f"{path} names {named}, which is not a complete checkpoint")
        return named
    if path.name.isdigit() and not path.exists() and path.parent.is_dir():
        named = path.parent / step_dir_name(int(path.name))
        if not named.is_dir():
            steps = ", ".join(p.name for p in CheckpointManager(path.parent).complete()) or "none"
            raise CheckpointError(f"{path}: no checkpoint of step {path.name} (found: {steps})")
        return named
    if path.is_dir() and not (path / "config.json").is_file():
        root = path if path.name == "checkpoints" else path / "checkpoints"
        if root.is_dir():
            found = CheckpointManager(root).latest()
            if found is None:
                raise CheckpointError(f"{path}: no complete checkpoint under {root}")
            return found
    return path
