"""Everything about a run that can be checked before Ray, vLLM or DeepSpeed start.

``preflight_rl(cfg, resume)`` runs in the driver process in a second or two and raises a
``ConfigError`` (or ``CheckpointError``) naming the key, file or row of the first mistake:

- data files: present, readable, non-empty, every row parsed by the data reader;
  the held-out set is not empty when it is named;
- rewards: every reward of the training and the evaluation sets imports, and a plain
  reward function accepts ``(completion, answer, metadata)``;
- resume: ``auto``, a checkpoint dir, ``latest`` or a step, complete and readable;
- the starting model: ``model.path`` resolves to a model dir; a run dir whose
  ``init-model`` was built from another preset (or seed, overrides) is an error;
- resources: the private Ray holds every actor; the GPUs asked for exist.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rl.config import ConfigError
from rl.run.checkpoint import (
    CheckpointError,
    CheckpointManager,
    read_state,
    resolve_reference,
    step_dir_name,
)

SOURCE_FILE = "sailrl-source.json"  # in <run>/init-model: the preset it was built from


@dataclass(frozen=True)
class RunData:
    """The checked prompt sets of a run (``policy.data`` lazy example sequences)."""

    train: Any
    eval: Any = None


@dataclass(frozen=True)
class Plan:
    """What the run starts from: the resolved config, its checked data and the checkpoint
    (None: fresh)."""

    cfg: Any
    data: RunData
    start: Path | None
    start_step: int


def check_data_file(key: str, path: Any, options: Any = None, require: tuple = ()):
    """The checked examples of ``path`` (a file, directory or glob; ``policy.data``); a
    ConfigError naming ``key`` and the file for a missing, unreadable, empty or malformed
    one, or a bad row (file:row) under ``data.on_bad_row: error``."""
    from rl.run.prompt_data import load_checked

    if not path:
        raise ConfigError(f"{key}: no file named")
    for name in [path] if isinstance(path, str | os.PathLike) else list(path):
        file = Path(name)
        if any(c in str(name) for c in "*?[") or file.is_dir():
            continue  # a glob or a directory: the reader names what it finds
        if not file.exists():
            raise ConfigError(f"{key}: {file} does not exist")
        if not os.access(file, os.R_OK):
            raise ConfigError(f"{key}: {file} is not readable (permissions)")
        size = file.stat().st_size
        if size == 0:
            raise ConfigError(f"{key}: {file} is empty")
        if size <= 1 << 16 and not file.read_bytes().strip():
            raise ConfigError(f"{key}: {file} holds no examples (only blank lines)")
    try:
        examples = load_checked(path, options, key, require)
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{key}: {path}: not UTF-8 text ({err.reason} at byte {err.start})"
        ) from err
    except (OSError, KeyError, TypeError) as err:
        message = str(err)
        raise ConfigError(
            f"{key}: {message}" if str(path) in message else f"{key}: {path}: {message}"
        ) from err
    if not len(examples):
        raise ConfigError(f"{key}: {path} holds no examples")
    return examples


def check_rewards(key: str, rewards_cfg: Any) -> None:
    """Import every reward of ``rewards_cfg``; a plain function must take
    ``(completion, answer, metadata)``."""
    from rewards.registry import BUILTINS, load_object, reward_paths

    try:
        paths = reward_paths(rewards_cfg)
    except ValueError as err:
        raise ConfigError(f"{key}.{err}") from err
    for name, path in paths.items():
        if BUILTINS.get(name) == path:
            # sailrl's own (tests/test_reward_registry.py imports each): not imported here,
            # where math-verify's import alone would hold the start of every run for ~1 s
            continue
        try:
            obj = load_object(path)
        except ValueError as err:
            raise ConfigError(f"{key}: reward {name!r}: {err}") from err
        if not callable(obj):
            raise ConfigError(f"{key}: reward {name!r}: {path!r} is not callable")
        if getattr(obj, "needs_config", False):
            continue  # a factory, called with the config in the workers
        try:
            inspect.signature(obj).bind("completion", "answer", {})
        except TypeError as err:
            raise ConfigError(
                f"{key}: reward {name!r} ({path}) must accept (completion, answer, metadata): {err}"
            ) from err
        except ValueError:
            continue  # no signature to inspect (a builtin); it is called as it is


def resolve_resume(ckpts: CheckpointManager, resume: str | None) -> Path | None:
    """The checkpoint to resume from; None for a fresh start (or ``auto`` with none yet)."""
    if resume is None:
        return None
    if resume == "auto":
        return ckpts.latest()
    found = ckpts.root / step_dir_name(int(resume)) if resume.isdigit() else Path(resume)
    try:
        found = resolve_reference(found)
        read_state(found)  # complete, readable: CheckpointError otherwise
    except CheckpointError as err:
        raise CheckpointError(f"--resume: {err}") from None
    return found


def model_source(model: Any) -> dict[str, Any]:
    return {"preset": model.preset, "seed": model.seed, "overrides": dict(model.overrides)}


def check_init_model(model: Any, run_dir: Path) -> None:
    """A run dir's ``init-model`` must be what ``model`` asks for: training an older model
    while config.yaml records a new preset is silently wrong."""
    if not model.preset:
        return
    target = run_dir / "init-model"
    if not (target / "config.json").exists():
        return
    recorded = target / SOURCE_FILE
    if not recorded.is_file():
        return  # built before sources were recorded; nothing to compare with
    built = json.loads(recorded.read_text())
    wanted = model_source(model)
    diff = [k for k in wanted if built.get(k) != wanted[k]]
    if diff:
        said = ", ".join(f"{k}={built.get(k)!r}" for k in diff)
        asked = ", ".join(f"{k}={wanted[k]!r}" for k in diff)
        raise ConfigError(
            f"model.{diff[0]}: {target} was built with {said}, but the config asks for "
            f"{asked}; set run.dir to a new directory (or delete {run_dir} to start over)"
        )


def preflight_rl(cfg: Any, resume: str | None) -> Plan:
    """Check an RL experiment before any actor starts (see module doc)."""
    from rl.run.eval_rewards import eval_rewards
    from rl.run.resources import check_resources

    run_dir = cfg.run.path
    if cfg.model.preset:
        from policy.presets import PRESETS

        if cfg.model.preset not in PRESETS:
            raise ConfigError(
                f"model.preset: unknown preset {cfg.model.preset!r}; choose one of {sorted(PRESETS)}"
            )
    check_init_model(cfg.model, run_dir)
    if cfg.model.path:
        try:
            model_path = resolve_reference(cfg.model.path)
        except Exception as err:
            raise ConfigError(f"model.path: {err}") from err
        if not (model_path / "config.json").is_file():
            raise ConfigError(f"model.path: {model_path} is not a model directory (no config.json)")
        cfg = replace(cfg, model=replace(cfg.model, path=str(model_path)))
    try:
        check_resources(cfg.ray, cfg.rl.num_learners, cfg.rl.num_rollout_engines)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    check_rewards("rewards", cfg.rewards)
    check_rewards("rewards (evaluation: answer + format)", eval_rewards(cfg.rewards))
    cfg = replace(cfg, data=cfg.data.resolve(run_dir))
    opts = cfg.data.read_options()
    train = check_data_file("data.train", cfg.data.train, opts, ("answer",))
    held_out = (
        check_data_file("data.eval", cfg.data.eval, opts, ("answer",)) if cfg.data.eval else None
    )
    ckpts = CheckpointManager(run_dir / "checkpoints", keep=cfg.rl.keep_checkpoints)
    start = resolve_resume(ckpts, resume)
    step = int(read_state(start)["step"]) if start is not None else 0
    return Plan(cfg, RunData(train, held_out), start, step)
