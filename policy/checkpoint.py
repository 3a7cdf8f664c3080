"""Checkpoint directories in the public SAIL-VL2 (HF-style) layout, and loading them with
errors that name the file and say what to do.

A directory holds ``config.json`` (``vision_config`` + ``llm_config`` + adapter/tiling keys),
``model.safetensors`` (or ``model-0000k-of-0000n.safetensors`` + ``model.safetensors.index.json``),
the tokenizer (``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``),
``generation_config.json`` and ``preprocessor_config.json``.

Weight names on disk are the public ones. They equal the in-memory names except for MoE
experts: transformers keeps them fused (``mlp.experts.gate_up_proj`` (E, 2I, H),
``mlp.experts.down_proj`` (E, H, I)); on disk they are per expert
(``mlp.experts.{e}.gate_proj.weight`` (I, H), ``up_proj`` (I, H), ``down_proj`` (H, I)), as in
Qwen3-MoE checkpoints and as vLLM loads them. ``checkpoint_tensors(model)`` gives the on-disk
view (also what weight sync sends).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, GenerationConfig

from policy.checkpoint_error import CheckpointError
from policy.config import SOURCE_ATTR, SAILVLConfig, resolve_attn_implementation
from policy.modeling import SAILVLModel
from policy.processor import IMAGENET_MEAN, IMAGENET_STD
from policy.tokenizer import ENDOFTEXT, IM_END, IMG_CONTEXT, special_token_ids

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")
_FUSED_EXPERTS = re.compile(r"^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$")
_SPLIT_EXPERT = re.compile(r"^(.*\.mlp\.experts)\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")
_INIT_HINT = "create one with `sailrl model init --preset tiny --out DIR`"
LM_HEAD = "language_model.lm_head.weight"
EMBED = "language_model.model.embed_tokens.weight"
# Environment default for load_checkpoint's attn_implementation (model.attn_implementation).
ATTN_ENV = "SAILRL_ATTN_IMPLEMENTATION"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedCheckpoint:
    model: SAILVLModel
    tokenizer: Any
    config: SAILVLConfig
    path: Path


# -- name mapping -------------------------------------------------------------------------
def checkpoint_tensors(model: SAILVLModel) -> Iterator[tuple[str, torch.Tensor]]:
    """(public name, tensor) pairs of ``model``'s weights, MoE experts split per expert.
    A tied ``lm_head`` is left out (it is the embedding). Tensors may be views."""
    tied = bool(getattr(model.config.llm_config, "tie_word_embeddings", False))
    for name, tensor in model.state_dict().items():
        if tied and name == "language_model.lm_head.weight":
            continue
        fused = _FUSED_EXPERTS.match(name)
        if not fused:
            yield name, tensor
            continue
        prefix, kind = fused.groups()
        for expert in range(tensor.shape[0]):
            if kind == "down_proj":
                yield f"{prefix}.{expert}.down_proj.weight", tensor[expert]
            else:
                gate, up = tensor[expert].chunk(2, dim=0)
                yield f"{prefix}.{expert}.gate_proj.weight", gate
                yield f"{prefix}.{expert}.up_proj.weight", up


def to_model_state_dict(
    tensors: dict[str, torch.Tensor], model: SAILVLModel
) -> dict[str, torch.Tensor]:
    """Public-name tensors -> ``model.state_dict()`` names (fuses per-expert MoE weights)."""
    out: dict[str, torch.Tensor] = {}
    experts: dict[tuple[str, str], dict[int, dict[str, torch.Tensor]]] = {}
    for name, tensor in tensors.items():
        split = _SPLIT_EXPERT.match(name)
        if not split:
            out[name] = tensor
            continue
        prefix, expert, kind = split.groups()
        target = "down_proj" if kind == "down_proj" else "gate_up_proj"
        experts.setdefault((prefix, target), {}).setdefault(int(expert), {})[kind] = tensor
    for (prefix, target), by_expert in experts.items():
        count = len(by_expert)
        if sorted(by_expert) != list(range(count)):
            raise CheckpointError(f"{prefix}: expert indices are not 0..{count - 1}")
        if target == "down_proj":
            out[f"{prefix}.down_proj"] = torch.stack(
                [by_expert[e]["down_proj"] for e in range(count)]
            )
        else:
            missing = [e for e in range(count) if set(by_expert[e]) != {"gate_proj", "up_proj"}]
            if missing:
                raise CheckpointError(f"{prefix}: experts {missing[:5]} lack gate_proj or up_proj")
            out[f"{prefix}.gate_up_proj"] = torch.stack(
                [
                    torch.cat([by_expert[e]["gate_proj"], by_expert[e]["up_proj"]])
                    for e in range(count)
                ]
            )
    return out


# -- save ---------------------------------------------------------------------------------
def save_checkpoint(
    model: SAILVLModel,
    tokenizer: Any,
    out_dir: str | os.PathLike,
    *,
    max_shard_bytes: int | None = None,
) -> Path:
    """Write a complete checkpoint directory. It is built beside ``out_dir`` and renamed into
    place when complete, so a crash never leaves a half-written checkpoint at ``out_dir``.

    A model loaded by ``load_checkpoint`` is saved in the layout of the directory it came from
    (``policy.source_layout``: its config.json with only changed values, its other files byte
    for byte, its weight names, dtypes and shards); ``max_shard_bytes`` re-shards instead.
    A model without a source gets sailrl's own files (shards of at most 4 GiB by default).
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    ids = special_token_ids(tokenizer)
    source = source_of(model.config)
    if source is not None:
        from policy import source_layout

        source_layout.write_config_like(model.config, source, tmp)
        source_layout.copy_model_files(source, tmp)
        if max_shard_bytes is None:
            tied = bool(getattr(model.config.llm_config, "tie_word_embeddings", False))
            tensors = dict(checkpoint_tensors(model))
            source_layout.write_weights_like(tensors, source, tmp, tied=tied)
        else:
            _write_weights(model, tmp, max_shard_bytes)
    else:
        model.config.img_context_token_id = ids[IMG_CONTEXT]
        model.config.save_pretrained(tmp)
        _write_weights(model, tmp, max_shard_bytes or 4 * 1024**3)
        tokenizer.save_pretrained(tmp)
        GenerationConfig(
            eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
            pad_token_id=ids[ENDOFTEXT],
            bos_token_id=None,
        ).save_pretrained(tmp)
        _write_preprocessor_config(model.config, tmp)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return out


def source_of(config: Any) -> Path | None:
    """The checkpoint directory ``config`` was loaded from, if it still holds a model."""
    source = getattr(config, SOURCE_ATTR, None)
    if not source:
        return None
    path = Path(source)
    if not (path / CONFIG_FILE).is_file():
        log.warning("the model's source checkpoint %s is gone: saving in sailrl's layout", path)
        return None
    return path


def _write_weights(model: SAILVLModel, directory: Path, max_shard_bytes: int) -> None:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in checkpoint_tensors(model):
        # clone: split experts are views of one storage, which safetensors refuses to save.
        tensor = tensor.detach().to("cpu").contiguous().clone()
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    metadata = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], directory / WEIGHTS_FILE, metadata=metadata)
        return
    weight_map = {}
    for k, shard in enumerate(shards, start=1):
        filename = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, directory / filename, metadata=metadata)
        weight_map.update(dict.fromkeys(shard, filename))
    total = sum(t.numel() * t.element_size() for s in shards for t in s.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _write_preprocessor_config(config: SAILVLConfig, directory: Path) -> None:
    values = {
        "image_size": config.force_image_size,
        "min_dynamic_patch": config.min_dynamic_patch,
        "max_dynamic_patch": config.max_dynamic_patch,
        "use_thumbnail": config.use_thumbnail,
        "dynamic_image_size": config.dynamic_image_size,
        "num_image_token": config.num_image_token,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "resample": "bicubic",
    }
    (directory / "preprocessor_config.json").write_text(json.dumps(values, indent=2) + "\n")


# -- load ---------------------------------------------------------------------------------
def _require_dir(path: str | os.PathLike) -> Path:
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {directory}; {_INIT_HINT}")
    return directory


def load_config(path: str | os.PathLike) -> SAILVLConfig:
    """The SAILVLConfig of checkpoint ``path``."""
    directory = _require_dir(path)
    file = directory / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing: {directory} is not a complete checkpoint; {_INIT_HINT}"
        )
    try:
        values = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file} is not valid JSON ({err}); rewrite or re-create it") from err
    if values.get("model_type") != "sailvl":
        raise CheckpointError(
            f"{file}: model_type is {values.get('model_type')!r}, expected 'sailvl' "
            "(a SAIL-VL2 checkpoint)"
        )
    try:
        return SAILVLConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{file}: {err}") from err


def load_tokenizer(path: str | os.PathLike) -> Any:
    """The checkpoint's tokenizer; errors name the missing file or token."""
    directory = _require_dir(path)
    missing = [name for name in TOKENIZER_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"tokenizer files {missing} are missing in {directory}; copy the tokenizer of the "
            "model this checkpoint came from into it (tokenizer.save_pretrained(dir))"
        )
    # trust_remote_code=False: a published config.json's auto_map must never make loading
    # ask (or run) anything; the tokenizer is a plain fast tokenizer.
    tokenizer = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
    template_file = directory / "chat_template.json"
    if not getattr(tokenizer, "chat_template", None) and template_file.is_file():
        # The processor-style template file, which AutoTokenizer does not read.
        try:
            tokenizer.chat_template = json.loads(template_file.read_text())["chat_template"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"{template_file} is not a chat template file (a JSON object with key "
                f"'chat_template'): {err}"
            ) from err
    try:
        special_token_ids(tokenizer)
    except KeyError as err:
        raise CheckpointError(f"tokenizer in {directory}: {err.args[0]}") from err
    return tokenizer


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All weights of checkpoint ``path`` under their public names."""
    directory = _require_dir(path)
    index = directory / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{index} is not a valid safetensors index ({err})") from err
        files = sorted(set(weight_map.values()))
    elif (directory / WEIGHTS_FILE).is_file():
        files = [WEIGHTS_FILE]
    else:
        raise FileNotFoundError(
            f"no weights in {directory}: expected {WEIGHTS_FILE} or {INDEX_FILE}; {_INIT_HINT}"
        )
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        file = directory / name
        if not file.is_file():
            raise FileNotFoundError(f"{file} is listed in {INDEX_FILE} but missing")
        try:
            shard = load_file(file)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(
                f"{file} is corrupt or truncated ({err}); re-save or re-download the checkpoint"
            ) from err
        if index.is_file():
            _check_index_entries(index, weight_map, name, shard)
        tensors.update(shard)
    return tensors


def _check_index_entries(
    index: Path, weight_map: dict[str, str], file: str, shard: dict[str, torch.Tensor]
) -> None:
    listed = {k for k, v in weight_map.items() if v == file}
    unlisted = sorted(set(shard) - listed)
    if unlisted:
        raise CheckpointError(
            f"{index} has no entry for {len(unlisted)} tensors of {file} "
            f"(e.g. key {unlisted[0]!r}): the index does not belong to these shards"
        )
    absent = sorted(listed - set(shard))
    if absent:
        raise CheckpointError(
            f"{index} maps key {absent[0]!r} (and {len(absent) - 1} more) to {file}, "
            "which lacks it: the shard is incomplete or the index is stale"
        )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    attn_implementation: str | None = None,
) -> LoadedCheckpoint:
    """Model (eval mode), tokenizer and config of checkpoint ``path``.

    ``attn_implementation`` (default: $SAILRL_ATTN_IMPLEMENTATION, else the checkpoint's own
    if this machine can serve it, else sdpa) is what the language model runs with; it is a
    runtime choice and never written back by ``save_checkpoint``.
    """
    directory = _require_dir(path)
    config = load_config(directory)
    requested = getattr(config.llm_config, "_attn_implementation", None)
    override = attn_implementation or os.environ.get(ATTN_ENV)
    chosen = resolve_attn_implementation(requested, override)
    if requested and chosen != requested:
        why = "model.attn_implementation overrides it" if override else "this machine lacks it"
        log.info(
            "%s: llm_config.attn_implementation is %r but %s: using %r",
            directory / CONFIG_FILE,
            requested,
            why,
            chosen,
        )
    if chosen != requested:
        config.llm_config._attn_implementation = chosen
    tokenizer = load_tokenizer(directory)
    # Ids come from the tokenizer, never from constants.
    config.img_context_token_id = special_token_ids(tokenizer)[IMG_CONTEXT]
    if len(tokenizer) > config.llm_config.vocab_size:
        raise CheckpointError(
            f"tokenizer in {directory} has {len(tokenizer)} tokens but "
            f"llm_config.vocab_size is {config.llm_config.vocab_size}: they do not belong together"
        )
    tensors = load_tensors(directory)
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = SAILVLModel(config)
    _load_into(model, tensors, directory)
    if (directory / "generation_config.json").is_file():
        # generate() stops at <|im_end|> only if it knows the eos ids.
        model.generation_config = GenerationConfig.from_pretrained(str(directory))
    model.to(device=device, dtype=dtype)
    model.eval()
    setattr(model.config, SOURCE_ATTR, str(directory.resolve()))
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, config=config, path=directory)


def _drop_tied_head(model: SAILVLModel, tensors: dict[str, torch.Tensor], directory: Path) -> None:
    """A stored lm_head under tied embeddings is accepted when it equals the embeddings."""
    if LM_HEAD not in tensors or EMBED not in tensors:
        return
    if not getattr(model.config.llm_config, "tie_word_embeddings", False):
        return
    head, embed = tensors[LM_HEAD], tensors[EMBED]
    if head.shape != embed.shape or not torch.equal(head, embed):
        raise CheckpointError(
            f"weights in {directory}: llm_config.tie_word_embeddings is true but the stored "
            f"{LM_HEAD} differs from {EMBED}; set tie_word_embeddings false in config.json "
            "if the head is trained separately, or drop the stored head"
        )
    del tensors[LM_HEAD]


def _load_into(model: SAILVLModel, tensors: dict[str, torch.Tensor], directory: Path) -> None:
    _drop_tied_head(model, tensors, directory)
    expected = {name: tuple(t.shape) for name, t in checkpoint_tensors(model)}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(
            f"weights in {directory} do not match config.json: {'; '.join(parts)}. "
            "The weights and config.json come from different models, or the save was cut short"
        )
    wrong = [
        f"{name} {tuple(tensors[name].shape)} != {shape}"
        for name, shape in expected.items()
        if tuple(tensors[name].shape) != shape
    ]
    if wrong:
        raise CheckpointError(
            f"weights in {directory} have shapes that config.json does not describe: "
            f"{'; '.join(wrong[:3])}"
        )
    state = to_model_state_dict(tensors, model)
    result = model.load_state_dict(state, strict=False)
    tied = {"language_model.lm_head.weight"}
    if result.unexpected_keys or set(result.missing_keys) - tied:
        raise CheckpointError(
            f"internal name mapping failed for {directory}: missing {result.missing_keys[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}"
        )
    if getattr(model.config.llm_config, "tie_word_embeddings", False):
        model.tie_weights()


def init_checkpoint(
    preset: str, out_dir: str | os.PathLike, *, seed: int = 0, **overrides: Any
) -> Path:
    """Write a randomly initialised checkpoint of ``preset`` with the tiny tokenizer;
    ``overrides`` set top-level config keys (e.g. ``force_image_size=224``).

    Tiny presets take their vocabulary size from the tokenizer; the SAIL-VL2 shape presets
    keep the Qwen3 vocabulary size (151936) and need minutes and tens of GB on a CPU.
    """
    from policy.presets import TINY_PRESETS, preset_config
    from policy.tokenizer import train_tokenizer

    # One tokenizer for every tiny checkpoint (the seed only drives the weights).
    tokenizer = train_tokenizer()
    vocab = len(tokenizer) if preset in TINY_PRESETS else None
    config = preset_config(preset, vocab_size=vocab, **overrides)
    config.img_context_token_id = special_token_ids(tokenizer)[IMG_CONTEXT]
    torch.manual_seed(seed)
    model = SAILVLModel(config)
    return save_checkpoint(model, tokenizer, out_dir)
