"""Saving a model in the layout of the checkpoint it was loaded from, so that whatever read
that checkpoint (the official remote code, VLMEvalKit, ms-swift, vLLM) reads the export too.

- ``config.json``: the source file itself when no value changed; otherwise the source's JSON
  with only the changed values written, under the keys the source used (``rope_theta`` stays
  ``rope_theta``, ``use_bias`` stays ``use_bias``). Runtime choices (the attention
  implementation picked for this machine, token ids read from the tokenizer) are not changes.
- every other non-weight file (remote-code ``.py``, tokenizer files, chat template,
  ``preprocessor_config.json``, ``generation_config.json``, model card, images): copied byte
  for byte. sailrl's own run files (learner state, ``state.json``, markers) are not copied.
- weights: the source's names (a stored ``lm_head`` under tied embeddings included), each
  tensor in the source's dtype and in the source's shard file, with its index.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

CONFIG_FILE = "config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
LM_HEAD = "language_model.lm_head.weight"
EMBED = "language_model.model.embed_tokens.weight"
# Files of a sailrl run directory that are not part of the model.
RUN_FILES = frozenset({"learner_state", "state.json", "COMPLETE", "DONE.json"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".safetensors.index.json")
_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
}
# Keys that describe this process, not the model: never written back as changes.
_RUNTIME_KEYS = frozenset(
    {
        "transformers_version",
        "_attn_implementation",
        "_attn_implementation_autoset",
        "attn_implementation",
        "img_context_token_id",
        "_name_or_path",
        "dtype",
        "torch_dtype",
        "architectures",
        "auto_map",
        "model_type",
        "use_cache",
    }
)


class SourceLayoutError(ValueError):
    """The source checkpoint and the model to save do not fit together."""


def is_weight_file(name: str) -> bool:
    return name.endswith(_WEIGHT_SUFFIXES)


def weight_layout(source: Path) -> tuple[dict[str, tuple[str, torch.dtype]], dict[str, Any]]:
    """{tensor name: (file, dtype)} of ``source``'s weights, and its index metadata."""
    index = source / INDEX_FILE
    if index.is_file():
        data = json.loads(index.read_text())
        weight_map, metadata = dict(data["weight_map"]), dict(data.get("metadata") or {})
    else:
        with safe_open(source / SINGLE_FILE, "pt") as f:
            weight_map, metadata = dict.fromkeys(f.keys(), SINGLE_FILE), {}
    layout: dict[str, tuple[str, torch.dtype]] = {}
    for file in sorted(set(weight_map.values())):
        with safe_open(source / file, "pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                if name in weight_map:
                    kind = f.get_slice(name).get_dtype()
                    layout[name] = (file, _DTYPES.get(kind, torch.float32))
    return layout, metadata


def write_weights_like(
    tensors: dict[str, torch.Tensor], source: Path, out: Path, *, tied: bool
) -> None:
    """Write ``tensors`` (public names) with ``source``'s names, dtypes and shards."""
    layout, metadata = weight_layout(source)
    if tied and LM_HEAD in layout and LM_HEAD not in tensors:
        tensors = {**tensors, LM_HEAD: tensors[EMBED]}  # the source stores the tied head
    missing = sorted(set(layout) - set(tensors))
    extra = sorted(set(tensors) - set(layout))
    if missing or extra:
        raise SourceLayoutError(
            f"cannot save in the layout of {source}: the model lacks {missing[:3]} and has "
            f"{extra[:3]} that {source} does not store; the model does not come from it"
        )
    files: dict[str, list[str]] = {}
    for name, (file, _) in layout.items():
        files.setdefault(file, []).append(name)
    total = 0
    for file, names in files.items():  # one shard in memory at a time
        shard = {
            name: tensors[name].detach().to("cpu", dtype=layout[name][1]).contiguous().clone()
            for name in names
        }
        total += sum(t.numel() * t.element_size() for t in shard.values())
        save_file(shard, out / file, metadata={"format": "pt"})
        del shard
    if (source / INDEX_FILE).is_file():
        index = {
            "metadata": {**metadata, "total_size": total},
            "weight_map": {name: file for name, (file, _) in sorted(layout.items())},
        }
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def copy_model_files(source: Path, out: Path) -> list[str]:
    """Copy every non-weight file of ``source`` (config.json excluded) byte for byte; hidden
    directories (``.cache/`` of a download, sailrl's staging) are skipped."""
    copied = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts[:-1]) or rel.parts[0] in RUN_FILES:
            continue
        if rel.name.startswith(".") and path.is_dir():
            continue
        if path.is_dir() or rel.as_posix() == CONFIG_FILE or is_weight_file(path.name):
            continue
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(rel.as_posix())
    return copied


# -- config.json --------------------------------------------------------------------------
def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _flat(config: Any) -> dict[tuple[str, str], Any]:
    top = config.to_dict()
    out: dict[tuple[str, str], Any] = {}
    for key, value in top.items():
        if key not in ("vision_config", "llm_config") and key not in _RUNTIME_KEYS:
            out[("", key)] = _norm(value)
    for sub in ("vision_config", "llm_config"):
        for key, value in getattr(config, sub).to_dict().items():
            if key not in _RUNTIME_KEYS:
                out[(sub, key)] = _norm(value)
    return out


def config_changes(config: Any, raw: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(section, key) -> new value for each value of ``config`` that differs from what the
    source JSON ``raw`` loads as (section "" is the top level)."""
    from policy.config import SAILVLConfig

    base, now = _flat(SAILVLConfig.from_dict(raw)), _flat(config)
    return {k: now.get(k) for k in sorted(set(base) | set(now)) if base.get(k) != now.get(k)}


def _apply(raw: dict[str, Any], section: str, key: str, value: Any) -> None:
    target = raw if not section else raw.setdefault(section, {})
    if section == "llm_config" and key == "rope_parameters" and "rope_parameters" not in target:
        # transformers-4 spelling: rope_theta plus rope_scaling for anything but default rope
        value = dict(value or {})
        target["rope_theta"] = value.pop("rope_theta", target.get("rope_theta"))
        if value.get("rope_type", "default") != "default" or "rope_scaling" in target:
            target["rope_scaling"] = None if value.get("rope_type") == "default" else value
        return
    aliases = {
        ("llm_config", "num_experts"): "num_local_experts",
        ("vision_config", "mlp_bias"): "use_bias",
    }
    alias = aliases.get((section, key))
    if alias and alias in target and key not in target:
        key = alias
    target[key] = value


def write_config_like(config: Any, source: Path, out: Path) -> dict[tuple[str, str], Any]:
    """Write ``out/config.json`` from ``source``'s; returns the changes written."""
    file = source / CONFIG_FILE
    raw = json.loads(file.read_text())
    changes = config_changes(config, raw)
    if not changes:
        shutil.copyfile(file, out / CONFIG_FILE)
        return changes
    for (section, key), value in changes.items():
        _apply(raw, section, key, value)
    (out / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n")
    return changes


def export_checkpoint(source: str | Path, out: str | Path) -> Path:
    """Load ``source`` (which must load in sailrl) and save it to ``out`` in its own layout:
    the round trip every save of a model loaded from ``source`` makes."""
    from policy.checkpoint import load_checkpoint, save_checkpoint

    source, out = Path(source), Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; export into a new directory")
    if out.resolve() == source.resolve():
        raise ValueError(f"export target {out} is the source itself")
    try:
        layout, _ = weight_layout(source)
    except (OSError, ValueError, KeyError, SafetensorError):
        layout = {}  # load_checkpoint below names what is wrong
    # Load in the stored dtype (an 8B bf16 model then needs ~17 GB, not ~35 GB).
    stored = {dtype for _, dtype in layout.values()}
    dtype = stored.pop() if len(stored) == 1 else torch.float32
    loaded = load_checkpoint(source, dtype=dtype)
    return save_checkpoint(loaded.model, loaded.tokenizer, out)
