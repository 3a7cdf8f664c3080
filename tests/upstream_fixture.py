"""A tiny checkpoint in the layout of the published SAIL-VL2 repos (as public text shows it;
see docs/model.md "Using the published SAIL-VL2 checkpoints"), written without sailrl's
saver so that loading it tests the real first contact:

- ``config.json`` in the remote code's shapes: ``auto_map``, ``model_type`` "sailvl",
  AIMv2-style ``vision_config`` (``use_bias``/``qkv_bias``, its own ``model_type`` and
  ``auto_map``, transformers-4 generic keys), ``llm_config`` in transformers-4 keys
  (``architectures``, ``rope_theta``, ``rope_scaling``, ``torch_dtype``) asking for
  ``attn_implementation: flash_attention_2``, ``force_image_size: null`` (or 448),
  ``select_layer: -1``, unknown top-level keys (``use_backbone_lora``, ``pad2square``);
- bf16 safetensors in several shards with ``model.safetensors.index.json``, including a stored
  ``language_model.lm_head.weight`` equal to the embeddings under ``tie_word_embeddings``;
- the tokenizer with its own chat template in ``tokenizer_config.json`` (a default system
  turn, no newline after ``<|im_end|>``, as ms-swift's ``sail_vl2`` template frames prompts);
- remote-code ``.py`` stand-ins named in ``auto_map``, ``preprocessor_config.json``,
  ``generation_config.json``, a README model card and the hub's ``.gitattributes``.

Head dim 64 (vLLM's CPU attention rejects 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

FIXTURE_SYSTEM = "You are a helpful assistant."
# The fixture's own template: default system turn, no newline after <|im_end|>.
FIXTURE_CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>' -}}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{{- '<|im_start|>system\\n" + FIXTURE_SYSTEM + "<|im_end|>' -}}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<image>\\n' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
REMOTE_CODE = (
    "configuration_sailvl.py",
    "modeling_sailvl.py",
    "configuration_sailvit.py",
    "modeling_sailvit.py",
    "configuration_qwen3.py",
    "modeling_qwen3.py",
    "processing_sailvl.py",
)
# transformers-4 generic keys that every sub-config of the published files carries.
_LEGACY = {
    "add_cross_attention": False,
    "bad_words_ids": None,
    "chunk_size_feed_forward": 0,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
    "label2id": {"LABEL_0": 0, "LABEL_1": 1},
    "max_length": 20,
    "min_length": 0,
    "num_beams": 1,
    "prefix": None,
    "pruned_heads": {},
    "return_dict": True,
    "torchscript": False,
    "use_bfloat16": False,
}


def upstream_config(vocab_size: int, *, force_image_size_null: bool = True) -> dict:
    """The config.json of the fixture (remote-code key layout)."""
    vision = {
        "_name_or_path": "/tmp/sailvit-huge-448",
        "architectures": ["AIMv2Model"],
        "auto_map": {
            "AutoConfig": "configuration_sailvit.AIMv2Config",
            "AutoModel": "modeling_sailvit.AIMv2Model",
        },
        "attention_dropout": 0.0,
        "hidden_size": 128,
        "image_size": 448,
        "intermediate_size": 256,
        "model_type": "sailvit",
        "num_attention_heads": 2,
        "num_channels": 3,
        "num_hidden_layers": 3,
        "patch_size": 14,
        "projection_dropout": 0.0,
        "qkv_bias": False,
        "rms_norm_eps": 1e-05,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.3",
        "use_bias": False,
        **_LEGACY,
    }
    llm = {
        "_name_or_path": "/tmp/Qwen3-1.7B",
        "architectures": ["Qwen3ForCausalLM"],
        "attn_implementation": "flash_attention_2",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 128,
        "initializer_range": 0.02,
        "intermediate_size": 256,
        "max_position_embeddings": 4096,
        "max_window_layers": 2,
        "model_type": "qwen3",
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.3",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab_size,
        **_LEGACY,
    }
    return {
        "architectures": ["SAILVLModel"],
        "auto_map": {
            "AutoConfig": "configuration_sailvl.SAILVLConfig",
            "AutoModel": "modeling_sailvl.SAILVLModel",
            "AutoModelForCausalLM": "modeling_sailvl.SAILVLModel",
        },
        "downsample_ratio": 0.5,
        "dynamic_image_size": True,
        "force_image_size": None if force_image_size_null else 448,
        "llm_config": llm,
        "max_dynamic_patch": 4,
        "min_dynamic_patch": 1,
        "model_type": "sailvl",
        "pad2square": False,
        "ps_version": "v2",
        "select_layer": -1,
        "template": "sailvl-chat",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.3",
        "use_backbone_lora": 0,
        "use_llm_lora": 0,
        "use_thumbnail": True,
        "vision_config": vision,
    }


def _shard_of(name: str) -> int:
    if name.startswith(("vision_model.", "mlp1.")):
        return 0
    if name.startswith("language_model.model.layers."):
        return 1
    return 2  # embeddings, final norm, lm_head


def build_upstream_checkpoint(
    out: str | Path, *, seed: int = 0, force_image_size_null: bool = True
) -> Path:
    """Write the fixture checkpoint into ``out`` and return its path."""
    from policy.checkpoint import checkpoint_tensors
    from policy.config import SAILVLConfig
    from policy.modeling import SAILVLModel
    from policy.tokenizer import ENDOFTEXT, IM_END, special_token_ids, train_tokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    ids = special_token_ids(tokenizer)
    vocab = -(-len(tokenizer) // 64) * 64 + 64  # padded past the tokenizer, as Qwen3's is
    raw = upstream_config(vocab, force_image_size_null=force_image_size_null)
    (out / "config.json").write_text(json.dumps(raw, indent=2) + "\n")

    # The weights, as an upstream writer would store them (bf16, lm_head stored though tied).
    config = SAILVLConfig.from_dict(json.loads(json.dumps(raw)))
    config.llm_config._attn_implementation = "sdpa"  # this writer runs without flash-attn
    torch.manual_seed(seed)
    model = SAILVLModel(config)
    with torch.no_grad():  # non-trivial norms, so that a skipped norm shows in outputs
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or ".norm_" in name:
                param.add_(0.1 * torch.randn_like(param))
    tensors = {
        n: t.detach().to(torch.bfloat16).contiguous().clone() for n, t in checkpoint_tensors(model)
    }
    tensors["language_model.lm_head.weight"] = tensors[
        "language_model.model.embed_tokens.weight"
    ].clone()
    shards: list[dict[str, torch.Tensor]] = [{}, {}, {}]
    for name, tensor in tensors.items():
        shards[_shard_of(name)][name] = tensor
    weight_map = {}
    for k, shard in enumerate(shards, start=1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, out / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

    # Tokenizer with the template in tokenizer_config.json (the published Qwen3 style).
    tokenizer.chat_template = None
    tokenizer.save_pretrained(out)
    for stray in ("chat_template.jinja", "chat_template.json"):
        (out / stray).unlink(missing_ok=True)
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    tok_config["chat_template"] = FIXTURE_CHAT_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")

    for name in REMOTE_CODE:
        (out / name).write_text(
            f"# Stand-in for the published remote code file {name} (never executed by sailrl).\n"
            "# Pinned upstream to transformers<=4.51.3.\n"
        )
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "crop_size": 448,
                "do_center_crop": True,
                "do_normalize": True,
                "do_resize": True,
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
                "resample": 3,
                "size": 448,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "generation_config.json").write_text(
        json.dumps(
            {
                "eos_token_id": [ids[IM_END], ids[ENDOFTEXT]],
                "pad_token_id": ids[ENDOFTEXT],
                "transformers_version": "4.51.3",
            },
            indent=2,
        )
        + "\n"
    )
    (out / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    (out / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: image-text-to-text\n"
        "---\n# SAIL-VL2 fixture\n\nA tiny stand-in in the layout of the published repos.\n"
    )
    return out
