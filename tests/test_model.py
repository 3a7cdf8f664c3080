"""SAILVLModel on tiny presets (fp32, CPU): forward/backward with and without images,
gradient flow, MoE aux loss, select_layer and pixel shuffle semantics, generate."""

import numpy as np
import pytest
import torch
from PIL import Image

from policy.modeling import SAILVLModel, pixel_shuffle
from policy.presets import preset_config
from policy.processor import SAILVLProcessor
from policy.tokenizer import IMG_CONTEXT, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def _model(preset: str, tokenizer, seed: int = 0) -> SAILVLModel:
    config = preset_config(preset, vocab_size=len(tokenizer))
    config.img_context_token_id = tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    torch.manual_seed(seed)
    return SAILVLModel(config)


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture(scope="module", params=["tiny", "tiny-moe"])
def model(request, tokenizer):
    return _model(request.param, tokenizer)


def test_text_only_forward_backward(model, tokenizer):
    ids = torch.tensor([tokenizer("What is 2 + 3? \\boxed{5}")["input_ids"]])
    model.zero_grad()
    out = model(ids, labels=ids)
    assert out.logits.shape == (1, ids.shape[1], model.config.llm_config.vocab_size)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    embed = model.language_model.model.embed_tokens.weight.grad
    assert embed is not None and embed.abs().sum() > 0
    # No image entered, so the vision tower got no gradient.
    assert model.vision_model.preprocessor.pos_embed.grad is None


def test_image_forward_backward_reaches_vision_and_adapter(model, tokenizer):
    processor = SAILVLProcessor(tokenizer, model.config)
    prompt = processor.process("How many red boxes?", [_image(700, 300)], mode="think")
    ids = torch.tensor([prompt.input_ids])
    model.zero_grad()
    out = model(ids, pixel_values=prompt.pixel_values, labels=ids)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    vision = model.vision_model
    used = model.config.num_vision_blocks_used
    grads = {
        "pos_embed": vision.preprocessor.pos_embed.grad,
        "patchifier": vision.preprocessor.patchifier.proj.weight.grad,
        "first block": vision.trunk.blocks[0].attn.qkv.weight.grad,
        "last used block": vision.trunk.blocks[used - 1].mlp.fc2.weight.grad,
        "mlp1.0": model.mlp1[0].weight.grad,
        "mlp1.1": model.mlp1[1].weight.grad,
        "mlp1.3": model.mlp1[3].weight.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reached {name}"
    # Blocks after the selected layer never run (the vLLM side does not even build them).
    assert vision.trunk.blocks[used].attn.qkv.weight.grad is None
    assert vision.trunk.post_trunk_norm.weight.grad is None


def test_images_change_the_logits(model, tokenizer):
    processor = SAILVLProcessor(tokenizer, model.config)
    a = processor.process("Describe.", [_image(448, 448, seed=1)])
    b = processor.process("Describe.", [_image(448, 448, seed=2)])
    assert a.input_ids == b.input_ids
    ids = torch.tensor([a.input_ids])
    with torch.no_grad():
        la = model(ids, pixel_values=a.pixel_values).logits
        lb = model(ids, pixel_values=b.pixel_values).logits
    assert not torch.allclose(la[:, -1], lb[:, -1])


def test_batch_of_two_prompts_with_several_images(tokenizer):
    model = _model("tiny", tokenizer)
    processor = SAILVLProcessor(tokenizer, model.config)
    p1 = processor.process(
        "<image> left, <image> right: compare.", [_image(900, 300), _image(50, 60)]
    )
    p2 = processor.process("Count.", [_image(300, 900, seed=3)])
    assert p1.tiles_per_image == (4, 1) and p2.tiles_per_image == (4,)
    length = max(len(p1.input_ids), len(p2.input_ids))
    pad = tokenizer.pad_token_id
    ids = torch.full((2, length), pad)
    mask = torch.zeros((2, length), dtype=torch.long)
    for row, p in enumerate((p1, p2)):
        ids[row, : len(p.input_ids)] = torch.tensor(p.input_ids)
        mask[row, : len(p.input_ids)] = 1
    pixels = torch.cat([p1.pixel_values, p2.pixel_values])
    with torch.no_grad():
        batched = model(ids, attention_mask=mask, pixel_values=pixels).logits
        alone = model(torch.tensor([p2.input_ids]), pixel_values=p2.pixel_values).logits
    n = len(p2.input_ids)
    torch.testing.assert_close(batched[1, :n], alone[0], rtol=1e-4, atol=1e-4)


def test_placeholder_mismatch_names_both_counts(tokenizer):
    model = _model("tiny", tokenizer)
    processor = SAILVLProcessor(tokenizer, model.config)
    prompt = processor.process("Look.", [_image(448, 448)])
    ids = torch.tensor([prompt.input_ids])
    two_tiles = torch.cat([prompt.pixel_values, prompt.pixel_values])
    with pytest.raises(
        ValueError, match=r"hold 256 <IMG_CONTEXT> tokens.*give 512 image embeddings"
    ):
        model(ids, pixel_values=two_tiles)
    with pytest.raises(
        ValueError, match=r"256 <IMG_CONTEXT> placeholder tokens but no pixel_values"
    ):
        model(ids)


def test_moe_aux_loss_is_finite_and_differentiable(tokenizer):
    model = _model("tiny-moe", tokenizer)
    ids = torch.tensor([tokenizer("Solve for x: 3x + 5 = 20.")["input_ids"]])
    out = model(ids, labels=ids, output_router_logits=True)
    assert out.aux_loss is not None and torch.isfinite(out.aux_loss)
    model.zero_grad()
    out.aux_loss.backward()
    router = model.language_model.model.layers[0].mlp.gate.weight.grad
    assert router is not None and router.abs().sum() > 0
    # Without the flag no aux loss is computed.
    assert model(ids).aux_loss is None


def test_select_layer_semantics(tokenizer):
    model = _model("tiny", tokenizer).eval()
    vision = model.vision_model
    pixels = torch.randn(2, 3, 448, 448)
    with torch.no_grad():
        # AIMv2's hidden_states: block outputs only, index 0 = the first block's output.
        states, x = [], vision.preprocessor(pixels)
        for block in vision.trunk.blocks:
            x = block(x)
            states.append(x)
        layers = len(vision.trunk.blocks)
        for select in (-4, -2, 0, 1, layers - 1):
            # hidden_states[select], no final norm
            torch.testing.assert_close(vision(pixels, select_layer=select), states[select])
        torch.testing.assert_close(
            vision(pixels, select_layer=-1), vision.trunk.post_trunk_norm(states[-1])
        )
        with pytest.raises(ValueError, match="out of range"):
            vision(pixels, select_layer=layers)
    assert model.config.num_vision_blocks_used == layers + 1 - 4


def test_pixel_shuffle_groups_two_by_two_blocks():
    x = torch.arange(4 * 4 * 2, dtype=torch.float32).reshape(1, 4, 4, 2)
    y = pixel_shuffle(x, 0.5)
    assert y.shape == (1, 2, 2, 8)
    for i in range(2):
        for j in range(2):
            block = [
                x[0, 2 * i, 2 * j],
                x[0, 2 * i, 2 * j + 1],
                x[0, 2 * i + 1, 2 * j],
                x[0, 2 * i + 1, 2 * j + 1],
            ]
            assert torch.equal(y[0, i, j], torch.cat(block))


def test_extract_feature_shape(tokenizer):
    model = _model("tiny", tokenizer)
    with torch.no_grad():
        feats = model.extract_feature(torch.randn(3, 3, 448, 448))
    assert feats.shape == (3, 256, model.config.llm_config.hidden_size)


@pytest.mark.parametrize("preset", ["tiny", "tiny-moe"])
def test_generate_matches_greedy_decoding_without_cache(preset, tokenizer):
    model = _model(preset, tokenizer, seed=1).eval()
    processor = SAILVLProcessor(tokenizer, model.config)
    prompt = processor.process("What is 7 + 8?", [_image(600, 400)])
    ids = torch.tensor([prompt.input_ids])
    with torch.no_grad():
        out = model.generate(
            ids, pixel_values=prompt.pixel_values, max_new_tokens=4, do_sample=False
        )
        seq = ids
        for _ in range(4):
            logits = model(seq, pixel_values=prompt.pixel_values).logits[:, -1]
            seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)
    assert out.shape[1] <= ids.shape[1] + 4
    assert torch.equal(out, seq[:, : out.shape[1]])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"select_layer": -7}, r"select_layer=-7 is out of range for a vision tower with 5 blocks"),
        ({"downsample_ratio": 0.3}, r"downsample_ratio=0.3 must be 1/k"),
        (
            {"force_image_size": 450},
            r"force_image_size=450 is not a multiple of vision_config.patch_size=14",
        ),
        ({"ps_version": "v1"}, r"ps_version='v1' is not supported"),
        ({"min_dynamic_patch": 5}, r"min_dynamic_patch=5 and max_dynamic_patch=4"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        preset_config("tiny", **overrides)


def test_preset_overrides_merge_single_llm_and_vision_keys():
    config = preset_config(
        "tiny-moe", llm_config={"hidden_size": 256, "num_hidden_layers": 4}, force_image_size=224
    )
    assert (config.llm_config.hidden_size, config.llm_config.num_hidden_layers) == (256, 4)
    assert config.llm_config.num_experts == 8  # the preset's other keys stay
    assert config.vision_config.image_size == 224
    assert (
        preset_config(
            "tiny", vision_config={"num_hidden_layers": 6}
        ).vision_config.num_hidden_layers
        == 6
    )
    with pytest.raises(ValueError, match="llm_config: give a mapping"):
        preset_config("tiny", llm_config=[256])


def test_config_rejects_unknown_llm_and_derives_token_count():
    from policy.config import SAILVLConfig

    with pytest.raises(ValueError, match=r"'LlamaForCausalLM' is not a supported language model"):
        SAILVLConfig(llm_config={"architectures": ["LlamaForCausalLM"]})
    config = SAILVLConfig()  # defaults must build (transformers instantiates configs bare)
    assert config.num_image_token == 256 and config.select_layer == -4
    assert config.llm_architecture == "Qwen3ForCausalLM"
    again = SAILVLConfig.from_dict(preset_config("tiny-moe").to_dict())
    assert again.is_moe and again.llm_config.num_experts == 8


def test_gradient_checkpointing_gives_the_same_gradients(tokenizer):
    model = _model("tiny", tokenizer)
    processor = SAILVLProcessor(tokenizer, model.config)
    prompt = processor.process("Count.", [_image(448, 448)])
    ids = torch.tensor([prompt.input_ids])

    def grads():
        model.zero_grad()
        model(ids, pixel_values=prompt.pixel_values, labels=ids).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.train()
    plain = grads()
    model.gradient_checkpointing_enable()
    assert model.vision_model.gradient_checkpointing
    checkpointed = grads()
    model.gradient_checkpointing_disable()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(plain[name], checkpointed[name], rtol=1e-5, atol=1e-6)
