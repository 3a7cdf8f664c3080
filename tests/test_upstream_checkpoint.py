"""A checkpoint in the published SAIL-VL2 layout (tests/upstream_fixture.py) loads as it is,
renders prompts with its own template on every path, reports itself through `model check`,
and exports to a directory that upstream code would load (files byte for byte, config.json
in the source's keys, the source's weight names, dtype and shards)."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from upstream_fixture import FIXTURE_SYSTEM, build_upstream_checkpoint

from policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from policy.processor import SAILVLProcessor, render_chat
from policy.source_layout import config_changes, is_weight_file
from rl.cli import main

LM_HEAD = "language_model.lm_head.weight"
EMBED = "language_model.model.embed_tokens.weight"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    return build_upstream_checkpoint(tmp_path_factory.mktemp("upstream") / "SAIL-VL2-tiny")


@pytest.fixture(scope="module")
def loaded(upstream):
    return load_checkpoint(upstream)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _files(directory):
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _weights(directory):
    index = json.loads((directory / "model.safetensors.index.json").read_text())["weight_map"]
    tensors = {}
    for file in sorted(set(index.values())):
        tensors.update(load_file(directory / file))
    return index, tensors


# -- loading ------------------------------------------------------------------------------
def test_loads_as_published(upstream, loaded):
    config = loaded.config
    assert config.force_image_size == 448  # null -> vision_config.image_size
    assert config.select_layer == -1 and config.num_vision_blocks_used == 3
    assert config.llm_config.rope_parameters["rope_theta"] == 1_000_000.0
    assert config.llm_config._attn_implementation == "sdpa"  # flash_attention_2 asked for
    assert config.use_backbone_lora == 0 and config.pad2square is False  # unknown keys kept
    lm = loaded.model.language_model
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    _, disk = _weights(upstream)
    state = loaded.model.state_dict()
    for name in ("vision_model.trunk.post_trunk_norm.weight", EMBED, "mlp1.1.weight"):
        assert torch.equal(state[name], disk[name].float())


def test_attn_implementation_override(upstream, monkeypatch):
    assert (
        load_checkpoint(
            upstream, attn_implementation="eager"
        ).config.llm_config._attn_implementation
        == "eager"
    )
    monkeypatch.setenv("SAILRL_ATTN_IMPLEMENTATION", "eager")
    assert load_checkpoint(upstream).config.llm_config._attn_implementation == "eager"


def test_positive_select_layer_uses_aimv2_indexing(upstream, tmp_path):
    bad = _copy(upstream, tmp_path / "ck")
    raw = json.loads((bad / "config.json").read_text())
    raw["select_layer"] = 0  # AIMv2 hidden_states[0]: the first block's output
    (bad / "config.json").write_text(json.dumps(raw))
    ck = load_checkpoint(bad)
    assert ck.config.num_vision_blocks_used == 1
    pixels = torch.randn(1, 3, 448, 448)
    vision = ck.model.vision_model
    with torch.no_grad():
        first = vision.trunk.blocks[0](vision.preprocessor(pixels))
        torch.testing.assert_close(vision(pixels, select_layer=0), first)


def test_vllm_side_builds_the_same_vision_blocks(loaded):
    from rollout.weight_names import keep_for_vllm, vision_blocks_used

    config = copy.deepcopy(loaded.config)
    assert vision_blocks_used(config) == 3 and keep_for_vllm(
        "vision_model.trunk.post_trunk_norm.weight", config
    )
    config.select_layer = 0
    assert vision_blocks_used(config) == config.num_vision_blocks_used == 1
    assert not keep_for_vllm("vision_model.trunk.blocks.1.attn.qkv.weight", config)


def test_differing_stored_lm_head_names_both_keys(upstream, tmp_path):
    bad = _copy(upstream, tmp_path / "ck")
    file = (
        bad / json.loads((bad / "model.safetensors.index.json").read_text())["weight_map"][LM_HEAD]
    )
    shard = load_file(file)
    shard[LM_HEAD] = shard[LM_HEAD] + 1
    save_file(shard, file, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"{LM_HEAD} differs from {EMBED}"):
        load_checkpoint(bad)


def _malformed(upstream, tmp_path, kind):
    bad = _copy(upstream, tmp_path / kind)
    index_file = bad / "model.safetensors.index.json"
    index = json.loads(index_file.read_text())
    if kind == "index":
        del index["weight_map"]["mlp1.0.weight"]
        index_file.write_text(json.dumps(index))
        return bad, r"model.safetensors.index.json has no entry .*'mlp1.0.weight'"
    if kind == "truncated":
        shard = bad / "model-00002-of-00003.safetensors"
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        return bad, r"model-00002-of-00003.safetensors is corrupt or truncated"
    raw = json.loads((bad / "config.json").read_text())
    raw["llm_config"]["architectures"] = ["LlamaForCausalLM"]
    (bad / "config.json").write_text(json.dumps(raw))
    return bad, r"config.json: llm_config.architectures\[0\]='LlamaForCausalLM'"


@pytest.mark.parametrize("kind", ["index", "truncated", "architecture"])
def test_malformed_checkpoint_exits_2_naming_the_file(upstream, tmp_path, capsys, kind):
    bad, message = _malformed(upstream, tmp_path, kind)
    capsys.readouterr()
    assert main(["model", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err), captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["ok"] is False


# -- model check / info -------------------------------------------------------------------
def test_model_check_reports_the_checkpoint(upstream, loaded, capsys):
    capsys.readouterr()
    assert main(["model", "check", str(upstream), "--prompt", "What is 2 + 3?"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] is True and report["chat_template"] == "checkpoint"
    assert report["image_context_token_id"] == loaded.tokenizer.convert_tokens_to_ids(
        "<IMG_CONTEXT>"
    )
    assert report["tied_lm_head"] is True and report["stored_lm_head"] is True
    unique = sum(p.numel() for p in loaded.model.parameters())  # shared tensors once
    assert report["params_total"] == unique
    assert any("flash_attention_2" in w for w in report["warnings"])
    assert report["prompt_text"].startswith(f"<|im_start|>system\n{FIXTURE_SYSTEM}<|im_end|>")
    assert "<|im_end|>\n" not in report["prompt_text"]
    assert report["weight_files"] == 3 and report["weight_dtypes"] == ["bfloat16"]


def test_model_check_with_an_image(upstream, tmp_path, capsys):
    from rollout.parity import synthetic_image

    image = tmp_path / "img.png"
    synthetic_image(900, 448, seed=0).save(image)  # two tiles + thumbnail
    capsys.readouterr()
    argv = ["model", "check", str(upstream), "--prompt", "Count.", "--image", str(image)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "<image>\nCount." in report["prompt_text"]
    assert report["prompt_tokens"] > 3 * 256


def test_tiny_preset_uses_the_builtin_template(tmp_path, capsys):
    assert main(["model", "init", "--preset", "tiny", "--out", str(tmp_path / "t")]) == 0
    capsys.readouterr()
    assert main(["model", "check", str(tmp_path / "t")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["chat_template"] == "builtin" and report["tied_lm_head"] is False


def test_model_info_counts_the_tied_head_once(upstream, loaded, capsys):
    capsys.readouterr()
    assert main(["model", "info", str(upstream), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_params"] == sum(p.numel() for p in loaded.model.parameters())
    assert summary["tied_lm_head"] is True


# -- prompts ------------------------------------------------------------------------------
def test_sft_rl_and_engine_prompts_carry_the_checkpoint_system_turn(loaded, tmp_path):
    from policy.data import Example
    from rl.loop.prompts import PromptBuilder
    from rollout.prompts import prepare
    from sft.encoding import encode_sft

    processor = SAILVLProcessor(loaded.tokenizer, loaded.config)
    tok = loaded.tokenizer
    sample = encode_sft(processor, "What is 2 + 3?", "<think>2+3=5</think>\\boxed{5}", "think")
    prompt_len = sample.loss_mask.index(1)
    sft_prompt = list(sample.input_ids[:prompt_len])
    assert tok.decode(sft_prompt).startswith(f"<|im_start|>system\n{FIXTURE_SYSTEM}<|im_end|>")
    example = Example(prompt="What is 2 + 3?", messages=None, answer="5", mode="think")
    request = PromptBuilder(processor).request(PromptBuilder(processor).prompt("p0", example))
    engine_ids = list(prepare(request, processor, max_model_len=4096).prompt_token_ids)
    assert engine_ids == sft_prompt
    # With an image: the learner's processor and the engine's prepare give the same ids.
    from rollout.parity import synthetic_image

    image = tmp_path / "img.png"
    synthetic_image(600, 448, seed=1).save(image)
    example = Example(
        prompt="Count.", messages=None, answer="3", images=(str(image),), mode="direct"
    )
    builder = PromptBuilder(processor)
    learner_side = processor.process(example.question, example.images, "direct")
    engine_side = prepare(builder.request(builder.prompt("p1", example)), processor, 4096)
    assert list(engine_side.prompt_token_ids) == learner_side.input_ids
    assert learner_side.text.startswith(f"<|im_start|>system\n{FIXTURE_SYSTEM}<|im_end|>")
    text = render_chat(tok, [{"role": "user", "content": "hi"}])
    assert text == tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


# -- export -------------------------------------------------------------------------------
def test_export_keeps_files_config_and_weight_layout(upstream, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["model", "export", str(upstream), "--out", str(out)]) == 0
    assert _files(out) == _files(upstream)  # every file, weights included, byte for byte
    assert main(["model", "export", str(upstream), "--out", str(out)]) == 2  # not empty


def test_changed_config_values_are_written_in_source_keys(loaded, upstream, tmp_path):
    model = loaded.model
    config = model.config
    old = (config.max_dynamic_patch, dict(config.llm_config.rope_parameters))
    try:
        config.max_dynamic_patch = 6
        config.llm_config.rope_parameters = {"rope_type": "default", "rope_theta": 5e6}
        raw = json.loads((upstream / "config.json").read_text())
        assert set(config_changes(config, raw)) == {
            ("", "max_dynamic_patch"),
            ("llm_config", "rope_parameters"),
        }
        save_checkpoint(model, loaded.tokenizer, tmp_path / "changed")
    finally:
        config.max_dynamic_patch, config.llm_config.rope_parameters = old
    written = json.loads((tmp_path / "changed" / "config.json").read_text())
    assert written["max_dynamic_patch"] == 6 and written["llm_config"]["rope_theta"] == 5e6
    assert "rope_parameters" not in written["llm_config"]
    written["max_dynamic_patch"], written["llm_config"]["rope_theta"] = 4, 1e6
    assert written == raw  # nothing else changed, keys as the source spelled them


@pytest.mark.integration  # DeepSpeed (CPU) learner
def test_one_sft_step_then_export(upstream, tmp_path):
    from policy.learner import Learner
    from policy.learner_config import LearnerConfig
    from rl.tasks import TaskConfig, write_dataset
    from sft.config import SFTConfig
    from sft.data import SFTStream, load_sft_examples
    from sft.train import learner_config_for, plan_total_steps, train

    task = TaskConfig(families=["text_arith"], n_sft_think=2, n_sft_direct=2, n_rl=0, n_eval=0)
    manifest = write_dataset(task, tmp_path / "data")
    files = [str(manifest.path("sft_think")), str(manifest.path("sft_direct"))]
    cfg = SFTConfig(
        train_files=files,
        mode="fusion",
        cot_fraction=0.5,
        batch_size=4,
        lr=1e-2,
        schedule="constant",
        max_steps=1,
        max_seq_len=1024,
    )
    stream = SFTStream(load_sft_examples(files), cfg.mode, cfg.seed, cfg.cot_fraction)
    lcfg = learner_config_for(
        cfg,
        LearnerConfig(zero_stage=0, micro_batch_tokens=4096),
        plan_total_steps(cfg, stream.epoch_size),
    )
    learner = Learner.from_pretrained(upstream, lcfg)
    processor = SAILVLProcessor.from_pretrained(upstream)

    class Log:
        def log(self, step, metrics):
            pass

        def progress(self, total, desc):
            class Bar:
                def update(self, k):
                    pass

                def close(self):
                    pass

            return Bar()

    train(cfg, learner, processor, Log(), stream=stream)
    out = tmp_path / "step1"
    out.mkdir()
    learner.save(out)
    src_files, out_files = _files(upstream), _files(out)
    for name, data in src_files.items():
        if not is_weight_file(name):
            assert out_files[name] == data, name  # config.json included: nothing changed
    src_index, src_w = _weights(upstream)
    out_index, out_w = _weights(out)
    assert out_index == src_index  # names and shards
    assert {n: t.dtype for n, t in out_w.items()} == {n: t.dtype for n, t in src_w.items()}
    assert torch.equal(out_w[LM_HEAD], out_w[EMBED])
    assert any(not torch.equal(out_w[n], src_w[n]) for n in src_w)  # it did train
    again = load_checkpoint(out)  # and loads again
    assert torch.equal(again.model.state_dict()[EMBED], out_w[EMBED].float())
    learner.load(out)  # a run resumes from it (stored lm_head and all)
    assert learner.step == 1


@pytest.mark.parametrize("where", ["chat_template.jinja", "chat_template.json"])
def test_template_is_read_from_each_file_transformers_uses(upstream, loaded, tmp_path, where):
    ck = _copy(upstream, tmp_path / "ck")
    tok_config = json.loads((ck / "tokenizer_config.json").read_text())
    template = tok_config.pop("chat_template")
    (ck / "tokenizer_config.json").write_text(json.dumps(tok_config))
    if where.endswith(".json"):
        (ck / where).write_text(json.dumps({"chat_template": template}))
    else:
        (ck / where).write_text(template)
    moved = SAILVLProcessor.from_pretrained(ck)
    here = SAILVLProcessor(loaded.tokenizer, loaded.config)
    assert moved.chat_template == "checkpoint"
    assert moved.prompt_text("What is 1 + 1?", [1], "think") == here.prompt_text(
        "What is 1 + 1?", [1], "think"
    )
