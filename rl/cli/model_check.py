"""``sailrl model check``: load a checkpoint the way training and rollout will, and say what
was read from where. The report's last line is one JSON object (see docs/model.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_MODULE = re.compile(r"^([A-Za-z_][\w]*)\.")


def _auto_map_files(raw: dict[str, Any]) -> list[str]:
    """The remote-code files ``auto_map`` entries (top level and sub-configs) name."""
    files = set()
    for section in (raw, raw.get("vision_config") or {}, raw.get("llm_config") or {}):
        for ref in (section.get("auto_map") or {}).values():
            for item in ref if isinstance(ref, list) else [ref]:
                match = _MODULE.match(str(item or "").split("--")[-1])
                if match:
                    files.add(f"{match.group(1)}.py")
    return sorted(files)


def check_checkpoint(
    path: str,
    *,
    prompt: str | None = None,
    image: str | None = None,
    mode: str = "direct",
    dtype: str = "bfloat16",
) -> dict[str, Any]:
    """Load ``path`` into the policy model, check what the vLLM plugin would load and render
    a prompt; raises CheckpointError / FileNotFoundError / ValueError naming the file."""
    import torch
    from transformers import AutoConfig

    from policy.checkpoint import load_checkpoint
    from policy.config import SAILVLConfig
    from policy.params import parameter_summary
    from policy.processor import SAILVLProcessor, image_to_pixel_values
    from policy.source_layout import weight_layout
    from rollout.weight_names import check_names

    directory = Path(path)
    raw = json.loads((directory / "config.json").read_text()) if directory.is_dir() else {}
    loaded = load_checkpoint(directory, dtype=getattr(torch, dtype))
    config, tokenizer, model = loaded.config, loaded.tokenizer, loaded.model
    warnings: list[str] = []
    requested = (raw.get("llm_config") or {}).get("attn_implementation")
    used = config.llm_config._attn_implementation
    if requested and used != requested:
        warnings.append(
            f"llm_config.attn_implementation is {requested!r}; this run uses {used!r} "
            "(written back unchanged on export)"
        )
    processor = SAILVLProcessor(tokenizer, config)
    if processor.chat_template == "builtin":
        warnings.append("no chat template of its own: prompts use sailrl's built-in ChatML")
    for file in _auto_map_files(raw):
        if not (directory / file).is_file():
            warnings.append(
                f"config.json auto_map names {file}, which is missing: the official remote "
                "code cannot load this directory"
            )
    # What vLLM reads: config.json through AutoConfig (sailrl's class, no remote code) and
    # the on-disk weight names through rollout.weight_names.
    vllm_config = AutoConfig.from_pretrained(str(directory), trust_remote_code=False)
    if not isinstance(vllm_config, SAILVLConfig):
        raise ValueError(
            f"{directory / 'config.json'}: AutoConfig reads it as {type(vllm_config).__name__}, "
            "not SAILVLConfig: vLLM would not load it with the sailrl plugin"
        )
    layout, _ = weight_layout(directory)
    vllm_names = check_names(list(layout), config)
    tied = bool(getattr(config.llm_config, "tie_word_embeddings", False))
    summary = parameter_summary(config)
    report: dict[str, Any] = {
        "ok": True,
        "path": str(directory),
        "llm_architecture": config.llm_architecture,
        "chat_template": processor.chat_template,
        "image_context_token_id": processor.img_context_token_id,
        "tied_lm_head": tied,
        "stored_lm_head": "language_model.lm_head.weight" in layout,
        "params_total": summary["total_params"],
        "params_active": summary["active_params"],
        "attn_implementation": used or "sdpa",
        "select_layer": config.select_layer,
        "vision_blocks_used": config.num_vision_blocks_used,
        "force_image_size": config.force_image_size,
        "num_image_token": config.num_image_token,
        "weight_files": len({file for file, _ in layout.values()}),
        "weight_dtypes": sorted({str(d).removeprefix("torch.") for _, d in layout.values()}),
        "vllm_weights": len(vllm_names),
        "warnings": warnings,
        "prompt_text": None,
    }
    if prompt is not None:
        images = [image] if image else []
        pixels = [image_to_pixel_values(i, processor.settings) for i in images]
        tiles = [p.shape[0] for p in pixels]
        text = processor.prompt_text(prompt, tiles, mode)
        ids = processor.text_ids(text, tiles)
        with torch.no_grad():
            logits = model(
                input_ids=torch.tensor([ids]),
                pixel_values=torch.cat(pixels) if pixels else None,
                use_cache=False,
            ).logits[0, -1]
        if not torch.isfinite(logits).all():
            raise ValueError(f"{directory}: the model's logits for the prompt are not finite")
        # Image blocks are shown as their <image> marker; prompt_tokens counts expanded ids.
        report["prompt_text"] = processor.chat_text(prompt, len(images), mode)
        report["prompt_tokens"] = len(ids)
        report["next_token"] = tokenizer.decode([int(logits.argmax())])
    return report
