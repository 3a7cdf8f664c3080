"""Checkpoint save/load (policy.checkpoint): bit-exact round trips, the public key layout on
disk, and clear errors for broken checkpoints."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from policy.checkpoint import (
    CheckpointError,
    checkpoint_tensors,
    init_checkpoint,
    load_checkpoint,
    load_config,
    save_checkpoint,
)
from policy.config import SAILVLConfig
from policy.modeling import SAILVLModel
from policy.presets import PRESETS
from policy.tokenizer import IMG_CONTEXT


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {p: init_checkpoint(p, root / p, seed=7) for p in ("tiny", "tiny-moe")}


def _copy(src, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("preset", ["tiny", "tiny-moe"])
def test_round_trip_is_bit_exact(preset, checkpoints, tmp_path):
    first = load_checkpoint(checkpoints[preset])
    saved = save_checkpoint(first.model, first.tokenizer, tmp_path / "again")
    second = load_checkpoint(saved)
    a, b = dict(first.model.state_dict()), dict(second.model.state_dict())
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # And the safetensors files themselves are identical tensor by tensor.
    disk_a = load_file(checkpoints[preset] / "model.safetensors")
    disk_b = load_file(saved / "model.safetensors")
    assert disk_a.keys() == disk_b.keys()
    assert all(torch.equal(disk_a[k], disk_b[k]) for k in disk_a)


def test_save_of_fresh_model_equals_loaded_model(tmp_path, checkpoints):
    loaded = load_checkpoint(checkpoints["tiny-moe"])
    torch.manual_seed(3)
    fresh = SAILVLModel(loaded.config)
    path = save_checkpoint(fresh, loaded.tokenizer, tmp_path / "fresh")
    back = load_checkpoint(path).model
    for (name, t), (_, u) in zip(fresh.state_dict().items(), back.state_dict().items()):
        assert torch.equal(t, u), name


def test_directory_has_the_hf_files(checkpoints):
    names = {p.name for p in checkpoints["tiny"].iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "preprocessor_config.json",
    } <= names
    config = json.loads((checkpoints["tiny"] / "config.json").read_text())
    assert config["model_type"] == "sailvl" and config["architectures"] == ["SAILVLModel"]
    assert config["llm_config"]["architectures"] == ["Qwen3ForCausalLM"]
    for key in ("select_layer", "downsample_ratio", "force_image_size", "ps_version", "template"):
        assert key in config


def test_disk_keys_use_the_public_layout(checkpoints):
    keys = set(load_file(checkpoints["tiny-moe"] / "model.safetensors"))
    for key in (
        "vision_model.preprocessor.patchifier.proj.weight",
        "vision_model.preprocessor.patchifier.proj.bias",
        "vision_model.preprocessor.patchifier.norm.weight",
        "vision_model.preprocessor.pos_embed",
        "vision_model.trunk.blocks.0.attn.qkv.weight",
        "vision_model.trunk.blocks.0.attn.proj.weight",
        "vision_model.trunk.blocks.0.norm_1.weight",
        "vision_model.trunk.blocks.0.mlp.fc3.weight",
        "vision_model.trunk.post_trunk_norm.weight",
        "mlp1.0.weight",
        "mlp1.1.weight",
        "mlp1.3.bias",
        "language_model.model.embed_tokens.weight",
        "language_model.model.layers.0.mlp.gate.weight",
        "language_model.model.layers.0.mlp.experts.7.gate_proj.weight",
        "language_model.model.layers.0.mlp.experts.7.up_proj.weight",
        "language_model.model.layers.1.mlp.experts.0.down_proj.weight",
        "language_model.model.norm.weight",
        "language_model.lm_head.weight",
    ):
        assert key in keys, key
    assert not any("gate_up_proj" in k for k in keys)


def test_expert_split_matches_fused_forward_layout(checkpoints):
    model = load_checkpoint(checkpoints["tiny-moe"]).model
    fused = model.language_model.model.layers[0].mlp.experts.gate_up_proj
    tensors = dict(checkpoint_tensors(model))
    inter = model.config.llm_config.moe_intermediate_size
    prefix = "language_model.model.layers.0.mlp.experts.3"
    assert torch.equal(tensors[f"{prefix}.gate_proj.weight"], fused[3, :inter])
    assert torch.equal(tensors[f"{prefix}.up_proj.weight"], fused[3, inter:])


def test_sharded_save_loads_the_same(checkpoints, tmp_path):
    loaded = load_checkpoint(checkpoints["tiny"])
    path = save_checkpoint(
        loaded.model, loaded.tokenizer, tmp_path / "sharded", max_shard_bytes=2**20
    )
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert not (path / "model.safetensors").exists()
    back = load_checkpoint(path).model
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, back.state_dict()[name]), name


def test_save_replaces_an_existing_checkpoint(checkpoints, tmp_path):
    loaded = load_checkpoint(checkpoints["tiny"])
    target = tmp_path / "ck"
    save_checkpoint(loaded.model, loaded.tokenizer, target)
    (target / "stale.txt").write_text("old")
    save_checkpoint(loaded.model, loaded.tokenizer, target)
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_image_token_id_comes_from_the_tokenizer(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["img_context_token_id"] = 999
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(path)
    assert loaded.config.img_context_token_id == loaded.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)


# -- errors -------------------------------------------------------------------------------
def test_missing_directory(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"checkpoint directory not found: .*nowhere.*sailrl model init"
    ):
        load_checkpoint(tmp_path / "nowhere")


def test_missing_config(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    (path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json is missing"):
        load_checkpoint(path)


def test_config_not_json(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config.json is not valid JSON"):
        load_config(path)


def test_unknown_llm_architecture(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    config = json.loads((path / "config.json").read_text())
    config["llm_config"]["architectures"] = ["LlamaForCausalLM"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"config.json.*'LlamaForCausalLM'.*Qwen3ForCausalLM.*Qwen3MoeForCausalLM",
    ):
        load_checkpoint(path)


def test_missing_weights(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"no weights in .*model.safetensors"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weights(checkpoints, tmp_path, damage):
    path = _copy(checkpoints["tiny"], tmp_path)
    file = path / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=r"model.safetensors is corrupt or truncated"):
        load_checkpoint(path)


def test_missing_and_unexpected_keys_are_named(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    tensors = load_file(path / "model.safetensors")
    del tensors["mlp1.1.weight"]
    tensors["vision_model.extra.weight"] = torch.zeros(2)
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(
        CheckpointError,
        match=r"1 missing \(e.g. mlp1.1.weight\); 1 unexpected \(e.g. vision_model.extra.weight\)",
    ):
        load_checkpoint(path)


def test_wrong_shape_is_named(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    tensors = load_file(path / "model.safetensors")
    tensors["mlp1.0.weight"] = torch.zeros(3)
    save_file(tensors, path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"mlp1.0.weight \(3,\) != \(512,\)"):
        load_checkpoint(path)


def test_weights_of_another_preset(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    shutil.copy(checkpoints["tiny-moe"] / "model.safetensors", path / "model.safetensors")
    with pytest.raises(
        CheckpointError, match=r"missing \(e.g. .*mlp.down_proj.*unexpected \(e.g. .*experts"
    ):
        load_checkpoint(path)


def test_missing_tokenizer(checkpoints, tmp_path):
    path = _copy(checkpoints["tiny"], tmp_path)
    (path / "tokenizer.json").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"tokenizer files \['tokenizer.json'\] are missing"
    ):
        load_checkpoint(path)


def test_tied_embeddings_round_trip(tmp_path, checkpoints):
    tokenizer = load_checkpoint(checkpoints["tiny"]).tokenizer
    spec = PRESETS["tiny"]
    llm = {**spec["llm_config"], "tie_word_embeddings": True, "vocab_size": len(tokenizer)}
    config = SAILVLConfig(vision_config=dict(spec["vision_config"]), llm_config=llm)
    torch.manual_seed(0)
    model = SAILVLModel(config)
    path = save_checkpoint(model, tokenizer, tmp_path / "tied")
    assert "language_model.lm_head.weight" not in load_file(path / "model.safetensors")
    back = load_checkpoint(path).model
    head = back.language_model.lm_head.weight
    assert head.data_ptr() == back.language_model.model.embed_tokens.weight.data_ptr()
    assert torch.equal(head, model.language_model.lm_head.weight)


def test_public_vision_config_spelling_is_accepted():
    config = SAILVLConfig(
        vision_config={
            "model_type": "aimv2",
            "use_bias": True,
            "hidden_size": 64,
            "num_attention_heads": 1,
            "num_hidden_layers": 4,
        }
    )
    assert config.vision_config.mlp_bias is True
    assert config.vision_config.image_size == 448


def test_generation_config_stops_at_im_end(checkpoints):
    loaded = load_checkpoint(checkpoints["tiny"])
    im_end = loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in loaded.model.generation_config.eos_token_id
    assert loaded.model.generation_config.pad_token_id == loaded.tokenizer.pad_token_id
