"""Non-math answers: normalised short text, multiple-choice letters and plain numbers.

These checks need no parser, so they run first; math-verify is only reached when they cannot
decide.
"""

from __future__ import annotations

import re
from fractions import Fraction

_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|operatorname)\s*\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")
_LATEX_SPACES = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[.:)]\s*.*)?$", re.DOTALL)
_WORD = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
# ASCII only: int() would read Arabic-Indic or bold maths digits as numbers.
_INT_OR_DEC = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$", re.ASCII)
_FRAC = re.compile(
    r"^([+-]?)\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$", re.ASCII
)
_SLASH = re.compile(r"^([+-]?)(\d+)\s*/\s*(\d+)$", re.ASCII)


def normalize_text(answer: str) -> str:
    """Lower case, single spaces, no ``$``, ``\\text{}`` wrappers, LaTeX spacing or a final
    period.

    >>> normalize_text("  \\\\text{ New   York }. ")
    'new york'
    """
    text = answer.replace("$", "")
    for _ in range(3):  # nested wrappers such as \text{\textbf{A}}
        new = _TEXT_WRAPPERS.sub(r"\1", text)
        if new == text:
            break
        text = new
    text = _LATEX_SPACES.sub(" ", text)
    text = _SPACES.sub(" ", text).strip().rstrip(".").strip()
    return text.lower()


def choice_letter(answer: str) -> str | None:
    """The multiple-choice letter of an answer such as ``B``, ``(b)``, ``B.`` or
    ``(B) 42``; None if it is not one.

    >>> [choice_letter(a) for a in ["B", "(b)", "C. 42", "\\\\text{(D)}", "AB", "12"]]
    ['b', 'b', 'c', 'd', None, None]
    """
    match = _LETTER.match(normalize_text(answer))
    return match.group(1) if match else None


def is_choice_reference(reference: str) -> bool:
    """A reference that is a lone letter, possibly in parentheses (``A``, ``(C)``)."""
    text = normalize_text(reference)
    return bool(re.fullmatch(r"\(?[a-z]\)?\.?", text))


def is_word_reference(reference: str) -> bool:
    """A reference made of words (``Paris``, ``no``): compared as text, because math parsing
    would read it as a product of symbols (``ab == ba``).

    >>> is_word_reference("Paris"), is_word_reference("x"), is_word_reference("\\\\pi")
    (True, False, False)
    """
    return bool(_WORD.match(normalize_text(reference)))


def plain_number(answer: str) -> Fraction | None:
    """Exact value of an integer, decimal (``1,000.5``), ``a/b`` or ``\\frac{a}{b}``; None for
    anything else (then math-verify decides).

    >>> [plain_number(a) for a in ["3", "3.0", "-0.5", "1/2", "\\\\dfrac12", "1,000", "x"]]
    [Fraction(3, 1), Fraction(3, 1), Fraction(-1, 2), Fraction(1, 2), Fraction(1, 2), Fraction(1000, 1), None]
    """
    text = answer.strip().replace("$", "").strip()
    if not text or len(text) > 64:
        return None
    if _INT_OR_DEC.match(text) and any(c.isdigit() for c in text):
        return Fraction(text.replace(",", ""))
    match = _FRAC.match(text) or _SLASH.match(text)
    if match is None:
        return None
    groups = [g for g in match.groups()[1:] if g]
    num, den = int(groups[0]), int(groups[1])
    if den == 0:
        return None
    sign = -1 if match.group(1).startswith("-") else 1
    return sign * Fraction(num, den)
