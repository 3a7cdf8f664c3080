"""SFT sequences: prompt, image and (in direct samples) thought tokens never carry loss; think
samples train the whole response; the prompt equals what the processor gives RL and vLLM."""

import pytest
from PIL import Image
from sft_tiny import tiny_model

from sft.encoding import encode_sft, response_loss_mask

THINK = "<think>\n3*4 = 12. 12+5 = 17.\n</think>\n\nThe answer is \\boxed{17}."


@pytest.fixture(scope="module")
def processor():
    return tiny_model()[1]


def _ids(processor, token):
    return processor.tokenizer.convert_tokens_to_ids(token)


def _trained_text(processor, sample):
    ids = [t for t, m in zip(sample.input_ids, sample.loss_mask) if m]
    return processor.tokenizer.decode(ids, skip_special_tokens=False)


def test_think_sample_trains_whole_response_only(processor):
    image = Image.new("RGB", (200, 120), (220, 30, 30))
    sample = encode_sft(processor, "What is 3 * 4 + 5?", THINK, "think", [image])
    prompt = processor.process("What is 3 * 4 + 5?", [image], mode="think")
    n = len(prompt.input_ids)
    # The prompt is byte-for-byte the processor's (the ids RL and vLLM use) and carries no loss.
    assert list(sample.input_ids[:n]) == prompt.input_ids
    assert sample.loss_mask[:n] == (0,) * n
    assert (
        sample.pixel_values is not None and sample.pixel_values.shape == prompt.pixel_values.shape
    )
    assert all(sample.loss_mask[n:])
    assert _trained_text(processor, sample) == THINK + "<|im_end|>"
    img_ctx = _ids(processor, "<IMG_CONTEXT>")
    assert img_ctx in sample.input_ids
    assert not any(m for t, m in zip(sample.input_ids, sample.loss_mask) if t == img_ctx)
    # The thinking instruction is in the (untrained) prompt of think samples.
    assert "MUST BE enclosed within <think>" in processor.tokenizer.decode(sample.input_ids[:n])


def test_direct_sample_trains_answer_only(processor):
    answer = "The answer is \\boxed{17}."
    sample = encode_sft(processor, "What is 3 * 4 + 5?", answer, "direct")
    prompt_text = processor.tokenizer.decode(sample.input_ids)
    assert "MUST BE enclosed" not in prompt_text
    assert _trained_text(processor, sample) == answer + "<|im_end|>"
    assert sample.pixel_values is None
    assert sample.num_loss_tokens == sum(sample.loss_mask) > 0


def test_direct_sample_with_thought_does_not_train_the_thought(processor):
    sample = encode_sft(processor, "What is 3 * 4 + 5?", THINK, "direct")
    trained = _trained_text(processor, sample)
    assert "12+5" not in trained and "<think>" not in trained and "</think>" not in trained
    assert trained.strip() == "The answer is \\boxed{17}.<|im_end|>"
    think_end = _ids(processor, "</think>")
    assert think_end in sample.input_ids


def test_system_and_earlier_turns_carry_no_loss(processor):
    messages = [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    sample = encode_sft(processor, messages, "The answer is \\boxed{6}.", "direct")
    assert _trained_text(processor, sample) == "The answer is \\boxed{6}.<|im_end|>"


def test_response_loss_mask_rules():
    assert response_loss_mask([5, 6], "think", 1, 2) == [1, 1]
    # An unclosed think block masks to the end: nothing after an unfinished thought is trained.
    assert response_loss_mask([5, 1, 6, 7], "direct", 1, 2) == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="mode"):
        response_loss_mask([1], "chat", 1, 2)


def test_bad_examples_rejected(processor):
    with pytest.raises(ValueError, match="response"):
        encode_sft(processor, "q", "", "think")
    with pytest.raises(ValueError, match="mode"):
        encode_sft(processor, "q", "a", "chat")
