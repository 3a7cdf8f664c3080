"""A tiny byte-level BPE tokenizer for test and demo models, trained locally in about a second
on generated text (English words, digits, arithmetic, LaTeX such as ``\\frac`` and
``\\boxed{}``, think tags), with the special tokens SAIL-VL2 prompts need and a ChatML chat
template. Saved with a checkpoint, it loads with ``transformers.AutoTokenizer`` and vLLM.

Real SAIL-VL2 checkpoints ship the Qwen3 tokenizer; nothing here hard-codes token ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

if TYPE_CHECKING:  # transformers loads where a tokenizer is built, not on import
    from transformers import PreTrainedTokenizerFast

from policy.vocab import (
    ENDOFTEXT,
    IM_END,
    IM_START,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    THINK_END,
    THINK_START,
)

# Control tokens: skipped by decode(skip_special_tokens=True).
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT]
# Like Qwen3, think tags are added tokens that survive skip_special_tokens (rewards read them).
TEXT_TOKENS = [THINK_START, THINK_END]

# ChatML, as Qwen3 and SAIL-VL2 use. Content may be a string or a list of parts
# ({"type": "text", "text": ...} / {"type": "image"}); an image part renders as "<image>\n",
# the marker policy.processor expands into <img><IMG_CONTEXT>...</img>.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- '<image>\\n' }}"
    "{%- elif part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen2/Qwen3 pre-tokenisation split: digits one by one, which helps tiny models do arithmetic.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "be",
    "are",
    "was",
    "what",
    "which",
    "how",
    "many",
    "much",
    "find",
    "compute",
    "calculate",
    "solve",
    "evaluate",
    "simplify",
    "answer",
    "question",
    "value",
    "total",
    "number",
    "numbers",
    "sum",
    "difference",
    "product",
    "quotient",
    "remainder",
    "equation",
    "expression",
    "integer",
    "fraction",
    "ratio",
    "percent",
    "area",
    "perimeter",
    "angle",
    "triangle",
    "circle",
    "square",
    "rectangle",
    "radius",
    "length",
    "width",
    "height",
    "degrees",
    "side",
    "sides",
    "point",
    "points",
    "line",
    "lines",
    "count",
    "image",
    "shown",
    "figure",
    "there",
    "apples",
    "boxes",
    "students",
    "each",
    "more",
    "less",
    "than",
    "twice",
    "half",
    "times",
    "plus",
    "minus",
    "equals",
    "first",
    "then",
    "so",
    "therefore",
    "thus",
    "because",
    "we",
    "get",
    "have",
    "has",
    "let",
    "step",
    "check",
    "result",
    "final",
    "reasoning",
    "think",
    "about",
    "problem",
    "given",
    "if",
    "not",
    "true",
    "false",
    "yes",
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "hundred",
    "thousand",
    "red",
    "blue",
    "green",
    "left",
    "right",
    "top",
    "bottom",
    "cost",
    "price",
    "money",
    "dollars",
    "cents",
    "hours",
    "minutes",
    "speed",
    "distance",
    "time",
    "rate",
    "average",
    "probability",
    "prime",
    "even",
    "odd",
    "largest",
    "smallest",
    "greater",
    "smaller",
    "between",
    "sequence",
    "next",
    "pattern",
]
_LATEX = [
    r"\frac{#}{#}",
    r"\sqrt{#}",
    r"\boxed{#}",
    r"#^{#}",
    r"\times",
    r"\div",
    r"\cdot",
    r"\pi",
    r"\le",
    r"\ge",
    r"\neq",
    r"\left(",
    r"\right)",
    r"\text{cm}",
    r"\%",
    r"x^2",
    r"\angle",
    r"\circ",
    r"\approx",
    r"\pm",
]


def synthetic_corpus(num_lines: int = 6000, seed: int = 0) -> Iterator[str]:
    """Deterministic training text shaped like the demo's math prompts and answers."""
    rng = random.Random(seed)
    for _ in range(num_lines):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        kind = rng.randrange(6)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        if kind == 0:
            yield f"What is {a} + {b}? {words.capitalize()}."
        elif kind == 1:
            yield f"{THINK_START}\n{a} - {b} = {a - b}, so the answer is {a - b}.\n{THINK_END}\n\\boxed{{{a - b}}}"
        elif kind == 2:
            latex = rng.choice(_LATEX)
            filled = (
                "".join(f"{piece}{rng.randint(1, 20)}" for piece in latex.split("#")[:-1])
                + latex.split("#")[-1]
            )
            yield f"Compute ${filled} + \\frac{{{a}}}{{{b}}}$ and {words}."
        elif kind == 3:
            yield f"Solve for x: {b}x + {a} = {a + 3 * b}. Then x = 3. The answer is \\boxed{{3}}."
        elif kind == 4:
            yield f"{words.capitalize()}: {a} \\times {b} = {a * b}; {a} \\div {b} \\approx {a / b:.2f}."
        else:
            yield f"{IM_START}user\n<image>\n{words}?{IM_END}\n{IM_START}assistant\n{words}{IM_END}"


def train_tokenizer(vocab_size: int = 2048, seed: int = 0) -> PreTrainedTokenizerFast:
    """Train the tiny tokenizer (about a second on one core) and wrap it for transformers."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TEXT_TOKENS),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(synthetic_corpus(seed=seed), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TEXT_TOKENS])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        additional_special_tokens=[IM_START, IMG_START, IMG_END, IMG_CONTEXT],
        clean_up_tokenization_spaces=False,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def special_token_ids(tokenizer) -> dict[str, int]:
    """Ids of the tokens prompts need, read from ``tokenizer``; KeyError names a missing one."""
    ids = {}
    for token in (*SPECIAL_TOKENS, *TEXT_TOKENS):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise KeyError(f"tokenizer has no token {token!r}; SAIL-VL2 prompts need it")
        ids[token] = int(token_id)
    return ids
