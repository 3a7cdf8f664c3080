"""The answer reward: the last boxed answer after the thought, checked against the reference.

Order of checks, cheapest first: normalised text equality, multiple-choice letters, word
answers, exact plain numbers, then math-verify (LaTeX numbers, fractions, percentages,
expressions, equations, sets, intervals, matrices). Only math-verify's LaTeX extraction is
used: its plain-expression extraction goes through sympy's ``parse_expr``, which evaluates
Python, and model text must never reach that.

math-verify's own timeouts use ``signal.alarm`` (wrong off the main thread), so they are off
here; the runtime runs this code in worker processes that it kills from outside instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from math_verify import LatexExtractionConfig, parse, verify

from rewards.extract import answer_region, boxed_answers, unwrap_reference
from rewards.text_answer import (
    choice_letter,
    is_choice_reference,
    is_word_reference,
    normalize_text,
    plain_number,
)

# math-verify warns once per process that timeouts are off; that is deliberate here.
logging.getLogger("math_verify").setLevel(logging.ERROR)

MAX_ANSWER_CHARS = 512  # a longer boxed answer is not a final answer; never parse it
MAX_DISTINCT_BOXES = 4
DECIMAL_PLACES = 6  # more different boxed answers than this is spam
_LATEX_ONLY = (LatexExtractionConfig(),)


@lru_cache(maxsize=8192)
def _parse_latex(text: str) -> tuple:
    """math-verify's parse of one answer as LaTeX, cached (references repeat across a group of
    samples). Empty when it does not parse."""
    if len(text) > MAX_ANSWER_CHARS:
        return ()
    parsed = parse(
        "\\boxed{" + text + "}",
        extraction_config=_LATEX_ONLY,
        fallback_mode="no_fallback",
        parsing_timeout=None,
    )
    return tuple(parsed)


@lru_cache(maxsize=16384)
def math_equal(pred: str, reference: str) -> bool:
    """Whether math-verify finds ``pred`` equal to ``reference`` (both LaTeX without ``$``).
    Cached: the samples of one prompt often repeat an answer.

    >>> math_equal("x=2", "2"), math_equal("\\\\{1,2\\\\}", "\\\\{2,1\\\\}"), math_equal("3", "4")
    (True, True, False)
    """
    gold = _parse_latex(reference)
    target = _parse_latex(pred) if gold else ()
    if not gold or not target:
        return False
    return bool(verify(list(gold), list(target), timeout_seconds=None))


def answers_match(pred: str, reference: str) -> bool:
    """Whether one extracted answer equals the reference answer.

    >>> [answers_match(p, "1/2") for p in ["0.5", "\\\\frac{1}{2}", "\\\\dfrac12", "2"]]
    [True, True, True, False]
    >>> answers_match("(b)", "B"), answers_match("paris", "Paris"), answers_match("ab", "ba")
    (True, True, False)
    """
    if not pred or len(pred) > MAX_ANSWER_CHARS:
        return False
    pred_text, ref_text = normalize_text(pred), normalize_text(reference)
    if not pred_text or not ref_text:
        return False
    if pred_text == ref_text:
        return True
    if is_choice_reference(reference):
        return choice_letter(pred) == choice_letter(reference)
    if is_word_reference(reference):
        return False
    pred_num, ref_num = plain_number(pred), plain_number(reference)
    if pred_num is not None and ref_num is not None:
        if pred_num == ref_num:
            return True
        # Like math-verify: a decimal matches when equal to 6 places (0.333333 = 1/3).
        if "." in pred or "." in reference:
            return round(pred_num, DECIMAL_PLACES) == round(ref_num, DECIMAL_PLACES)
        return False
    return math_equal(pred, reference)


def answer_reward(
    completion: str, answer: str, metadata: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """1.0 when the last boxed answer after the thought equals ``answer``, else 0.0.

    Several boxed answers that differ score 0 unless every one of them is correct. The
    component ``answer_found`` is 0.0 when there is no boxed answer (outcome ``no_answer``).

    >>> answer_reward("<think>1+1</think> The sum is \\\\boxed{2}.", "2")["score"]
    1.0
    >>> answer_reward("<think>\\\\boxed{2}</think> I am not sure.", "2")
    {'score': 0.0, 'answer_found': 0.0, 'multiple_answers': 0.0}
    >>> answer_reward("\\\\boxed{1} \\\\boxed{2} \\\\boxed{3}", "2")["score"]
    0.0
    """
    boxes = boxed_answers(answer_region(completion))
    if not boxes:
        return {"score": 0.0, "answer_found": 0.0, "multiple_answers": 0.0}
    reference = unwrap_reference(answer)
    distinct = list(dict.fromkeys(normalize_text(b) for b in boxes))
    if len(distinct) == 1:
        score = answers_match(boxes[-1], reference)
        return {"score": float(score), "answer_found": 1.0, "multiple_answers": 0.0}
    if len(distinct) > MAX_DISTINCT_BOXES:
        return {"score": 0.0, "answer_found": 1.0, "multiple_answers": 1.0}
    # Several different spellings may still be one value (0.5 and \frac12): all must match.
    originals = list(dict.fromkeys(boxes))
    score = all(answers_match(b, reference) for b in originals)
    return {"score": float(score), "answer_found": 1.0, "multiple_answers": 1.0}
