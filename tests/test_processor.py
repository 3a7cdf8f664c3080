"""Image tiling, normalisation and prompt building (policy.processor)."""

import numpy as np
import pytest
import torch
from PIL import Image

from policy.presets import preset_config
from policy.processor import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    THINK_INSTRUCTION,
    SAILVLProcessor,
    TilingSettings,
    closest_grid,
    expand_image_markers,
    image_to_pixel_values,
    num_tiles,
    tile_image,
)
from policy.tokenizer import IMG_CONTEXT, train_tokenizer

DEFAULT = TilingSettings()  # 448 px, 1..12 tiles, thumbnail


def _image(width, height, color=None, seed=0):
    if color is not None:
        return Image.new("RGB", (width, height), color)
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("size", "grid", "tiles"),
    [
        ((1000, 250), (4, 1), 5),  # wide: 4 columns + thumbnail
        ((250, 1000), (1, 4), 5),  # tall: 4 rows + thumbnail
        ((896, 896), (2, 2), 5),  # square and large: the larger of the equal-ratio grids
        ((448, 448), (1, 1), 1),  # square, one tile's area: no thumbnail
        ((20, 20), (1, 1), 1),  # tiny
        ((1344, 448), (3, 1), 4),
        ((5000, 100), (12, 1), 13),  # extreme aspect: capped by max tiles
    ],
)
def test_grid_and_tile_counts(size, grid, tiles):
    assert closest_grid(*size, DEFAULT) == grid
    assert num_tiles(*size, DEFAULT) == tiles
    assert image_to_pixel_values(_image(*size), DEFAULT).shape == (tiles, 3, 448, 448)


def test_equal_ratio_tie_prefers_larger_grid_only_for_large_images():
    # Aspect 1 matches (1,1), (2,2), (3,3) exactly; InternVL moves to a larger grid only
    # when the image area exceeds half of that grid's area.
    assert closest_grid(600, 600, DEFAULT) == (1, 1)  # 360000 < 0.5 * 448^2 * 4
    assert closest_grid(700, 700, DEFAULT) == (2, 2)  # 490000 > 401408
    assert closest_grid(1400, 1400, DEFAULT) == (3, 3)  # > 0.5 * 448^2 * 9


def test_settings_from_config_limit_tiles():
    config = preset_config("tiny")
    settings = TilingSettings.from_config(config)
    assert settings.max_num == config.max_dynamic_patch == 4
    assert closest_grid(5000, 100, settings) == (4, 1)
    assert num_tiles(20, 20, TilingSettings(dynamic=False)) == 1
    assert num_tiles(5000, 100, TilingSettings(dynamic=False)) == 1


def test_tiles_are_row_major_crops_and_thumbnail_is_last():
    # Left half red, right half blue, top/bottom split by brightness: 2x2 grid.
    image = Image.new("RGB", (896, 896))
    image.paste((255, 0, 0), (0, 0, 448, 448))
    image.paste((0, 0, 255), (448, 0, 896, 448))
    image.paste((0, 255, 0), (0, 448, 448, 896))
    image.paste((255, 255, 255), (448, 448, 896, 896))
    tiles = tile_image(image, DEFAULT)
    assert len(tiles) == 5
    centres = [t.getpixel((224, 224)) for t in tiles[:4]]
    assert centres == [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)]
    assert tiles[4].size == (448, 448)


def test_normalisation_uses_imagenet_mean_and_std():
    pixels = image_to_pixel_values(_image(448, 448, color=(255, 255, 255)), DEFAULT)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    for channel, value in enumerate(expected):
        assert torch.allclose(pixels[0, channel], torch.tensor(value), atol=1e-5)
    assert pixels.dtype == torch.float32


def test_expand_image_markers():
    text = expand_image_markers("<image>\nA <image> B", [2, 1], 3)
    assert text == "<img>" + IMG_CONTEXT * 6 + "</img>\nA <img>" + IMG_CONTEXT * 3 + "</img> B"
    with pytest.raises(ValueError, match="2 <image> markers but 1 images"):
        expand_image_markers("<image><image>", [1], 3)


@pytest.fixture(scope="module")
def processor():
    tokenizer = train_tokenizer()
    config = preset_config("tiny", vocab_size=len(tokenizer))
    return SAILVLProcessor(tokenizer, config)


def test_think_mode_appends_the_official_instruction(processor):
    text = processor.prompt_text("What is 2 + 2?", [], mode="think")
    assert text == (
        "<|im_start|>user\nWhat is 2 + 2?"
        + THINK_INSTRUCTION
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert THINK_INSTRUCTION.endswith(r"The final answer MUST BE put in \boxed{}.")
    direct = processor.prompt_text("What is 2 + 2?", [], mode="direct")
    assert direct == "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="mode='fast'"):
        processor.prompt_text("x", [], mode="fast")


def test_prompt_text_agrees_with_the_tokenizer_chat_template(processor):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    ours = processor.prompt_text(messages, [], mode="direct")
    template = processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert ours == template


def test_several_images_without_markers_are_prepended(processor):
    images = [_image(1000, 250), _image(20, 20, seed=1)]
    prompt = processor.process("Compare them.", images, mode="direct")
    assert prompt.tiles_per_image == (4 + 1, 1)  # tiny preset: max 4 tiles + thumbnail
    assert prompt.pixel_values.shape == (6, 3, 448, 448)
    context_id = processor.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    assert prompt.input_ids.count(context_id) == 6 * 256
    assert prompt.text.startswith("<|im_start|>user\n<img>")
    assert prompt.text.count("<img>") == 2
    assert "</img>\n<img>" in prompt.text and "</img>\nCompare them." in prompt.text


def test_markers_in_messages_are_expanded_in_place(processor):
    messages = [{"role": "user", "content": "First <image> then <image>?"}]
    prompt = processor.process(messages, [_image(448, 448), _image(896, 448)], mode="direct")
    assert prompt.tiles_per_image == (1, 3)
    assert prompt.text.startswith("<|im_start|>user\nFirst <img>")
    with pytest.raises(ValueError, match="2 <image> markers but 1 images"):
        processor.process(messages, [_image(448, 448)])


def test_text_only_prompt_has_no_pixels(processor):
    prompt = processor.process("Plain question", [])
    assert prompt.pixel_values is None and prompt.tiles_per_image == ()


def test_missing_image_file_names_the_path(processor, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        processor.process("x", [tmp_path / "nope.png"])
