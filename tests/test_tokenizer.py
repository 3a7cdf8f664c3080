"""The tiny byte-level BPE tokenizer (policy.tokenizer)."""

import pytest
from transformers import AutoTokenizer

from policy.tokenizer import (
    CHAT_TEMPLATE,
    IM_END,
    IMG_CONTEXT,
    SPECIAL_TOKENS,
    TEXT_TOKENS,
    special_token_ids,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    tokenizer = train_tokenizer()
    tokenizer.save_pretrained(path)
    return tokenizer, path


def test_special_tokens_are_single_ids(saved):
    tokenizer, _ = saved
    ids = special_token_ids(tokenizer)
    assert set(ids) == set(SPECIAL_TOKENS) | set(TEXT_TOKENS)
    assert len(set(ids.values())) == len(ids)
    for token, token_id in ids.items():
        assert tokenizer(token, add_special_tokens=False)["input_ids"] == [token_id], token
    assert tokenizer.eos_token == IM_END


@pytest.mark.parametrize(
    "text",
    [
        "What is 123 + 456? The answer is \\boxed{579}.",
        "Compute $\\frac{3}{4} \\times \\sqrt{16}$, then x^2 \\le 10.",
        "<think>\n7 - 2 = 5\n</think>\n\\boxed{5}",
        "Ünïcödé and emoji 🙂 survive byte-level BPE",
    ],
)
def test_round_trip(saved, text):
    tokenizer, _ = saved
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_digits_are_split_and_math_words_are_merged(saved):
    tokenizer, _ = saved
    tokens = tokenizer.tokenize("12345 \\frac \\boxed answer")
    assert tokens[:5] == ["1", "2", "3", "4", "5"]
    assert "frac" in tokens and "boxed" in tokens
    # Learned merges keep common text short.
    assert len(tokenizer.tokenize("What is the total number of apples?")) <= 9


def test_think_tags_survive_skip_special_tokens(saved):
    tokenizer, _ = saved
    text = f"<think>ok</think>\\boxed{{1}}{IM_END}"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>ok</think>\\boxed{1}"


def test_training_is_deterministic(saved):
    tokenizer, _ = saved
    assert train_tokenizer().get_vocab() == tokenizer.get_vocab()


def test_autotokenizer_loads_the_saved_files(saved):
    tokenizer, path = saved
    loaded = AutoTokenizer.from_pretrained(str(path))
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.chat_template == CHAT_TEMPLATE
    text = loaded.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Count."}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == "<|im_start|>user\n<image>\nCount.<|im_end|>\n<|im_start|>assistant\n"
    assert loaded.convert_tokens_to_ids(IMG_CONTEXT) == tokenizer.convert_tokens_to_ids(IMG_CONTEXT)


@pytest.mark.integration
def test_vllm_loads_the_saved_tokenizer(saved):
    get_tokenizer = pytest.importorskip("vllm.tokenizers").get_tokenizer
    tokenizer, path = saved
    loaded = get_tokenizer(str(path))
    text = "<|im_start|>user\n12 + 3 <img><IMG_CONTEXT></img><|im_end|>"
    assert loaded.encode(text, add_special_tokens=False) == tokenizer.encode(
        text, add_special_tokens=False
    )
    assert loaded.eos_token_id == tokenizer.convert_tokens_to_ids(IM_END)
