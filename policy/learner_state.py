"""Save and load of a Learner: model weights as a loadable SAIL-VL2 checkpoint plus the
training state (optimiser, LR scheduler, RNG, counters).

Layout written into the directory the caller gives (the caller makes it atomic):

    config.json, model.safetensors, tokenizer files, ...   (policy.checkpoint layout, rank 0)
    learner_state/meta.json                                 (world size, ZeRO stage, step)
    learner_state/rank00000.pt, rank00001.pt, ...           (per data-parallel rank)

ZeRO partitions the optimiser state by rank, so a checkpoint loads only with the same world
size and ZeRO stage (the error says so). Everything is read with ``torch.load(weights_only=
True)``; DeepSpeed's few non-tensor records are allow-listed by name.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from policy.learner import Learner

STATE_DIR = "learner_state"
META_FILE = "meta.json"
FORMAT_VERSION = 1


class LearnerStateError(ValueError):
    """A learner checkpoint exists but cannot be restored; the message names the file."""


# -- RNG ----------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python ``random`` states as tensors and plain values."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": py_version,
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng``."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))


# -- files --------------------------------------------------------------------------------
def _safe_globals() -> list[Any]:
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, fragment_address, LossScaler, DynamicLossScaler]


def read_state_file(file: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of one state file; errors name it."""
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing: the learner checkpoint in {file.parent.parent} is incomplete; "
            "resume from an earlier checkpoint"
        )
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise LearnerStateError(
            f"{file} is corrupt or truncated ({type(err).__name__}: {str(err)[:200]}); resume "
            "from an earlier checkpoint"
        ) from err


def _rank_file(directory: Path, rank: int) -> Path:
    return directory / STATE_DIR / f"rank{rank:05d}.pt"


def _barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


# -- save ---------------------------------------------------------------------------------
def save_learner_state(learner: Learner, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    weights = learner._gather_weights(public=False)  # collective under ZeRO-3
    if learner.rank == 0:
        _write_model(learner, weights, directory)
    (directory / STATE_DIR).mkdir(exist_ok=True)
    state = {
        "optimizer": learner.engine.optimizer.state_dict(),
        "scheduler": learner.scheduler.state_dict(),
        "rng": capture_rng(),
        "step": learner.step,
        "skipped_steps": learner.skipped_steps,
    }
    torch.save(state, _rank_file(directory, learner.rank))
    if learner.rank == 0:
        meta = {
            "format": FORMAT_VERSION,
            "world_size": learner.world_size,
            "zero_stage": learner.config.zero_stage,
            "offload": learner.config.offload,
            "dtype": str(learner.dtype).removeprefix("torch."),
            "step": learner.step,
        }
        (directory / STATE_DIR / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    _barrier()


def _write_model(learner: Learner, weights: dict[str, torch.Tensor], directory: Path) -> None:
    config = getattr(learner.module, "config", None)
    if getattr(config, "llm_config", None) is None:
        # A plain HF model (tests, experiments): weights + config only.
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in weights.items()}, directory / "model.safetensors")
        if config is not None:
            config.save_pretrained(directory)
        return
    if learner.tokenizer is None:
        raise ValueError(
            "Learner.save writes a complete SAIL-VL2 checkpoint and needs the tokenizer: build "
            "the learner with Learner.from_pretrained(path, config) or pass tokenizer="
        )
    from policy.checkpoint import save_checkpoint
    from policy.learner import _TensorsView

    # save_checkpoint replaces its target directory, so build in a sub-directory and move the
    # files up: whatever else the caller already put into `directory` stays.
    staging = directory / ".model"
    save_checkpoint(_TensorsView(config, weights), learner.tokenizer, staging)  # type: ignore[arg-type]
    for item in staging.iterdir():
        target = directory / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    staging.rmdir()


# -- load ---------------------------------------------------------------------------------
def load_learner_state(learner: Learner, directory: Path) -> None:
    if not directory.is_dir():
        raise FileNotFoundError(f"learner checkpoint directory not found: {directory}")
    meta_file = directory / STATE_DIR / META_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{meta_file} is missing: {directory} is not a complete learner checkpoint (was the "
            "save interrupted?); resume from an earlier checkpoint"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise LearnerStateError(f"{meta_file} is not valid JSON ({err})") from err
    for key, have in (
        ("world_size", learner.world_size),
        ("zero_stage", learner.config.zero_stage),
    ):
        if meta.get(key) != have:
            raise LearnerStateError(
                f"{meta_file}: saved with {key}={meta.get(key)} but this learner has {key}={have}; "
                f"resume with the same {key} (ZeRO partitions the optimiser state by rank)"
            )
    weights = _read_model(learner, directory)
    learner._load_weights(weights, directory)
    stage = learner.config.zero_stage
    # ZeRO-2 rebuilds this rank's fp32 partition from all ranks' saved partitions.
    ranks = range(learner.world_size) if stage == 2 else [learner.rank]
    states = {r: read_state_file(_rank_file(directory, r)) for r in ranks}
    own = states[learner.rank]
    optimizer = learner.engine.optimizer
    try:
        if stage == 2:
            optimizer.load_state_dict(
                [states[r]["optimizer"] for r in ranks],
                load_optimizer_states=True,
                load_from_fp32_weights=True,
            )
        elif stage == 3:
            listing = [None] * learner.world_size
            listing[learner.rank] = own["optimizer"]
            optimizer.load_state_dict(listing, load_optimizer_states=True)
        else:
            optimizer.load_state_dict(own["optimizer"])
        learner.scheduler.load_state_dict(own["scheduler"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise LearnerStateError(
            f"{_rank_file(directory, learner.rank)} does not fit this learner's optimiser "
            f"({type(err).__name__}: {str(err)[:200]}); the learner config differs from the saved run"
        ) from err
    restore_rng(own["rng"])
    learner.step = int(own["step"])
    learner.skipped_steps = int(own["skipped_steps"])
    _barrier()


def _read_model(learner: Learner, directory: Path) -> dict[str, torch.Tensor]:
    config = getattr(learner.module, "config", None)
    if getattr(config, "llm_config", None) is not None:
        from policy.checkpoint import load_tensors, to_model_state_dict

        return to_model_state_dict(load_tensors(directory), learner.module)  # type: ignore[arg-type]
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = directory / "model.safetensors"
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: the learner checkpoint is incomplete")
    try:
        return load_file(file)
    except (SafetensorError, OSError) as err:
        raise LearnerStateError(f"{file} is corrupt or truncated ({err})") from err
