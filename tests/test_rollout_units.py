"""Rollout pieces that need no vLLM engine: the weight-name table, prompt preparation and
its bad-input errors, records and config validation, checkpoint checks."""

from __future__ import annotations

import pytest
import torch

from policy.checkpoint import checkpoint_tensors, init_checkpoint, load_checkpoint
from policy.processor import SAILVLProcessor
from rollout.config import RolloutConfig
from rollout.engine import check_checkpoint
from rollout.parity import parity_requests, synthetic_image, weight_buckets
from rollout.prompts import InvalidPromptError, prepare, prepare_all
from rollout.types import RolloutRequest, SamplingSettings
from rollout.weight_names import UnknownWeightError, check_names, vision_blocks_used, vllm_target


@pytest.fixture(scope="module", params=["tiny", "tiny-moe"])
def checkpoint(request, tmp_path_factory):
    path = init_checkpoint(request.param, tmp_path_factory.mktemp(request.param) / "ckpt")
    return load_checkpoint(path)


@pytest.fixture(scope="module")
def processor(checkpoint):
    return SAILVLProcessor(checkpoint.tokenizer, checkpoint.config)


# -- weight names -------------------------------------------------------------------------
def test_every_policy_name_maps_in_both_layouts(checkpoint):
    config = checkpoint.config
    model = checkpoint.model
    disk = [name for name, _ in checkpoint_tensors(model)]
    memory = [name for name, _ in model.named_parameters()]
    for name in disk + memory:
        target = vllm_target(name, config)
        if target is None:
            assert name.startswith("vision_model.trunk"), name
    assert check_names(disk, config)  # nothing unknown


def test_unbuilt_vision_parts_are_dropped(checkpoint):
    config = checkpoint.config
    used = vision_blocks_used(config)
    assert used == config.vision_config.num_hidden_layers + 1 + config.select_layer
    assert vllm_target(f"vision_model.trunk.blocks.{used}.attn.qkv.weight", config) is None
    assert vllm_target(f"vision_model.trunk.blocks.{used - 1}.attn.qkv.weight", config) is not None
    assert vllm_target("vision_model.trunk.post_trunk_norm.weight", config) is None


def test_fused_names_carry_their_shard(checkpoint):
    config = checkpoint.config
    q = vllm_target("language_model.model.layers.1.self_attn.q_proj.weight", config)
    assert q.param == "language_model.model.layers.1.self_attn.qkv_proj.weight"
    fc3 = vllm_target("vision_model.trunk.blocks.0.mlp.fc3.weight", config)
    assert (fc3.param, fc3.shard) == ("vision_model.trunk.blocks.0.mlp.fc13.weight", 1)


def test_unknown_weight_name_is_an_error_naming_it(checkpoint):
    with pytest.raises(UnknownWeightError, match="language_model.model.bogus.weight"):
        vllm_target("language_model.model.bogus.weight", checkpoint.config)


def test_weight_buckets_group_by_size():
    tensors = [(f"t{i}", torch.zeros(256)) for i in range(10)]  # 1 KiB each
    buckets = list(weight_buckets(tensors, bucket_bytes=3000))
    assert [len(b) for b in buckets] == [3, 3, 3, 1]
    assert [n for b in buckets for n, _ in b] == [n for n, _ in tensors]


# -- prompts ------------------------------------------------------------------------------
def test_prompt_ids_equal_policy_processor_ids(processor, tmp_path):
    for request in parity_requests(tmp_path):
        prepared = prepare(request, processor, max_model_len=100_000)
        expected = processor.process(request.prompt, list(request.images), request.mode)
        assert list(prepared.prompt_token_ids) == expected.input_ids, request.prompt_id
        assert len(prepared.images) == len(request.images)


def test_bad_inputs_name_the_prompt_and_spare_the_rest(processor, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    good = tmp_path / "good.png"
    synthetic_image(64, 64, 0).save(good)
    requests = [
        RolloutRequest("ok", "What is 1 + 1?"),
        RolloutRequest("missing", "Describe.", (str(tmp_path / "nope.png"),)),
        RolloutRequest("unreadable", "Describe.", (str(broken),)),
        RolloutRequest("empty", "   "),
        RolloutRequest("long", "seven " * 5000),
        RolloutRequest("ok-image", "Describe.", (str(good),)),
    ]
    ready, failures = prepare_all(requests, processor, max_model_len=2048)
    assert [p.request.prompt_id for _, p in ready] == ["ok", "ok-image"]
    messages = {f.prompt_id: f.message for f in failures}
    assert set(messages) == {"missing", "unreadable", "empty", "long"}
    assert "nope.png" in messages["missing"] and "'missing'" in messages["missing"]
    assert "broken.png" in messages["unreadable"]
    assert "empty" in messages["empty"]
    assert "2048" in messages["long"]


def test_image_tokens_in_prompt_text_are_rejected(processor):
    request = RolloutRequest("sneaky", "look <IMG_CONTEXT> here")
    with pytest.raises(InvalidPromptError, match="sneaky"):
        prepare(request, processor, max_model_len=4096)


# -- records, config, checkpoint ----------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"n": 0}, "n=0"),
        ({"top_p": 0.0}, "top_p"),
        ({"temperature": -1}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_sampling_settings_reject_bad_values(kwargs, key):
    with pytest.raises(ValueError, match=key):
        SamplingSettings(**kwargs)


def test_rollout_config_rejects_bad_values():
    with pytest.raises(ValueError, match="kv_cache_gib"):
        RolloutConfig(model="x", kv_cache_gib=0)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        RolloutConfig(model="x", gpu_memory_utilization=1.5)


def test_checkpoint_without_tokenizer_is_a_clear_error(checkpoint, tmp_path):
    (tmp_path / "config.json").write_text(checkpoint.config.to_json_string())
    with pytest.raises(FileNotFoundError, match="no tokenizer") as err:
        check_checkpoint(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(FileNotFoundError, match="not found"):
        check_checkpoint(tmp_path / "absent")


# -- plugin, prompt files -----------------------------------------------------------------
def test_vllm_plugin_entry_point_is_installed():
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert plugins.get("sailvl") == "rollout.plugin:register"


def test_prompt_file_parsing_and_errors(tmp_path):
    from rollout.prompt_file import PromptFileError, read_prompts

    good = tmp_path / "p.jsonl"
    good.write_text(
        '{"id": "a", "prompt": "Hi", "mode": "direct"}\n\n'
        '{"messages": [{"role": "user", "content": "<image> x"}], "images": ["i.png"]}\n'
    )
    first, second = read_prompts(good)
    assert (first.prompt_id, first.mode, first.images) == ("a", "direct", ())
    assert second.prompt_id == "3" and second.mode == "think"
    assert second.images == (str(tmp_path / "i.png"),)
    for line, message in [
        ("{not json", "p.jsonl:1: not valid JSON"),
        ('{"prompt": "x", "mode": "fast"}', "mode 'fast'"),
        ('{"prompt": "x", "messages": []}', "exactly one"),
        ('{"prompt": "x", "images": "a.png"}', "list of paths"),
    ]:
        bad = tmp_path / "p.jsonl"
        bad.write_text(line + "\n")
        with pytest.raises(PromptFileError, match=message):
            read_prompts(bad)
