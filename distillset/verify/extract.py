"""Reading the final answer out of a response or a reference, as text (no math library here).

**Final answer of a response** (``extract_final_answer``), first rule that finds one wins:

1. the last non-empty ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces balanced), so
   "The final answer is: $\\boxed{72}$" reads ``72``;
2. the last answer marker that is followed by an answer: "final answer is", "answer:",
   "answer is", "####" (and 答案是 / 答案：), case-insensitive, markdown emphasis ignored
   ("**Answer: 1,234**"). The answer is the math at the start of the text after the marker (a
   ``$...$`` span, or the leading run of numbers, operators and LaTeX up to the first word), else
   the first number after it on that line;
3. the last number in the last non-empty line.

A number mentioned earlier in the reasoning never overrides a later marker, so a wrong final answer
is not read as the right one. No rule matching means no final answer (the caller makes that
``wrong``, never a pass).

**Reference** (``reference_answer``): GSM8K's forms (``#### 72``, a worked solution ending in
``#### 72``), a ``\\boxed{}`` answer, or a bare answer (``72``, ``$18``, ``38 people``, ``19%``,
``\\frac{3}{4}``, a short formula without words). Free text ("Area is 3", "True.") is not a reference.

**Normalization** (``normalize_answer``) makes the forms math-verify misreads or cannot read into
ones it reads: math delimiters and ``\\boxed``/``\\text`` wrappers removed, currency (``$``, ``\\$``,
``€``...) and trailing unit words (``18 cm``, ``18\\text{ cm}``, ``72^\\circ``) dropped, ``\\%`` and
"percent" turned into ``%``, thousands separators (``1,234``, ``1{,}234``, ``1\\,234``, ``1 234``)
removed when the whole answer is one number. ``1\\,234`` in particular reads as 235 in math-verify.
A comma followed by other than three digits (``12,5``) is left alone: math-verify reads it as a
decimal comma.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_ANSWER_CHARS = 200
"""The longest final answer (normalized) that is compared; longer ones are ``answer_too_long``."""

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MARKER = re.compile(
    r"final\s+answer\s*(?:is|was|would\s+be|will\s+be)?\s*[:：=]?"
    r"|\banswer\s*(?:is|would\s+be|will\s+be)\s*[:：=]?"
    r"|\banswer\s*[:：=]"
    r"|####"
    r"|答案\s*(?:是|为|[:：])",
    re.IGNORECASE,
)
# Bold and code marks only: a single "*" is as often a multiplication as an emphasis.
_EMPHASIS = re.compile(r"\*\*|__|`")
# A number as responses write it: optional sign and currency, thousands separators, decimals,
# an optional "/denominator", an optional percent.
_CURRENCY = r"(?:US\$|USD\s?|\\\$|\$|€|£|¥|₹)"
_NUMBER = (
    rf"(?:[-−+]\s?)?{_CURRENCY}?\s?(?:[-−+])?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?"
    r"(?:\s?/\s?\d+(?:\.\d+)?)?(?:\s?(?:\\?%|percent\b))?"
)
_NUMBER_RE = re.compile(_NUMBER)
# Inline math that is not currency: "$18 and $20" has no closing "$" right after a non-space;
# an escaped "\\$" inside the math ("$\\$1,000$") is currency, not the closing delimiter.
_INLINE_MATH = re.compile(
    r"\$\$(.+?)\$\$|\$(?!\s)((?:\\\$|[^$\n])*?(?:\\\$|[^\s$\\]))\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL
)
_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z]{2,}|.", re.DOTALL)
_LATEX_WORDS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{[^{}]*\}")
_WRAPPERS = ("boxed", "fbox", "text", "textbf", "textit", "mathrm", "mathbf", "mbox", "displaystyle")
_TRAILING = " \t\n.,;:!?。，"
_SEPARATORS = r"(?:,|\{,\}|\\,|\\ |\\;|\\!|~| |'|’|\u2009|\u202f|\u00a0)"
_GROUPED = re.compile(rf"[-+]?\d{{1,3}}(?:{_SEPARATORS}\d{{3}})+(?:\.\d+)?%?")
_UNIT_TAIL = re.compile(
    r"(?:\s*\\(?:text|mathrm|mbox)\s*\{[^{}]*\}|\s*\^\s*\{?\\circ\}?|\s*°"
    r"|\s*[A-Za-z][A-Za-z.]*(?:\s+[A-Za-z][A-Za-z.]*){0,2}|\s*\([A-Za-z][A-Za-z. ]*\))$"
)
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?%?")


class FinalAnswer(NamedTuple):
    """A final answer read from a response: its text and the rule that found it."""

    text: str
    rule: str  # "boxed", "marker" or "last_line"


def _braced(text: str, open_index: int) -> str | None:
    """The content of the brace group opening at ``text[open_index]``, or None if unclosed."""
    depth = 0
    for index in range(open_index, len(text)):
        char = text[index]
        if char == "{" and (index == 0 or text[index - 1] != "\\"):
            depth += 1
        elif char == "}" and text[index - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_index + 1 : index]
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last non-empty, closed ``\\boxed{}`` / ``\\fbox{}`` in ``text``."""
    for match in reversed(list(_BOXED.finditer(text))):
        content = _braced(text, match.end() - 1)
        if content is not None and content.strip():
            return content.strip()
    return None


def _math_prefix(span: str) -> str | None:
    """The leading math of ``span``: numbers, operators and LaTeX, up to the first plain word."""
    span = span.lstrip(" \t:=–—*")
    math = _INLINE_MATH.match(span)
    if math:
        return next(group for group in math.groups() if group is not None).strip()
    prefix = []
    for token in _TOKEN.finditer(span):
        piece = token.group()
        if piece == "\n" or (len(piece) > 1 and piece[0] != "\\"):
            break
        if piece in ".。" and token.end() < len(span) and span[token.end()].isspace():
            break  # the end of the sentence
        prefix.append(piece)
    candidate = "".join(prefix).strip().rstrip(_TRAILING)
    candidate = re.sub(r"\\(?:text|mathrm|mbox|textbf)\s*\{?\s*$", "", candidate).strip().rstrip(_TRAILING)
    if not candidate or candidate.count("{") != candidate.count("}") or candidate.count("$") % 2:
        return None
    if re.search(r"\d|\\[A-Za-z]", candidate) or re.fullmatch(r"\(?[A-Za-z]\)?", candidate):
        return candidate
    return None


def _answer_after_marker(span: str) -> str | None:
    line = span.lstrip()
    if not line:
        return None
    # "The final answer is:\n\n72": the answer may start on the next non-empty line.
    first_line = line.split("\n", 1)[0]
    prefix = _math_prefix(first_line) if first_line.strip() else None
    if prefix is not None:
        return prefix
    number = _NUMBER_RE.search(first_line)
    return number.group().strip() if number else None


def find_final_answer(response: str) -> FinalAnswer | None:
    """The final answer of ``response`` and the rule that found it (see the module docstring)."""
    if not response or not response.strip():
        return None
    boxed = last_boxed(response)
    if boxed is not None:
        return FinalAnswer(boxed, "boxed")
    text = _EMPHASIS.sub("", response)
    for marker in reversed(list(_MARKER.finditer(text))):
        answer = _answer_after_marker(text[marker.end() :])
        if answer is not None:
            return FinalAnswer(answer, "marker")
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        numbers = _NUMBER_RE.findall(lines[-1])
        if numbers:
            return FinalAnswer(numbers[-1].strip(), "last_line")
    return None


def extract_final_answer(response: str) -> str | None:
    """The final answer text of ``response`` (as written, not normalized), or None.

    Args:
        response: a model response, reasoning included.

    Returns:
        The text of the final answer, e.g. ``"1,234"`` or ``"\\frac{3}{4}"``; None when the
        response has no boxed answer, no answer marker followed by an answer, and no number on
        its last non-empty line.
    """
    found = find_final_answer(response)
    return found.text if found else None


def _is_bare_answer(text: str) -> bool:
    if "\n" in text or len(text) > 100:
        return False
    if _INLINE_MATH.fullmatch(text):
        return True
    normalized = normalize_answer(text)
    if _PLAIN_NUMBER.fullmatch(normalized):
        return True
    # A short formula: no plain word of two letters or more outside LaTeX commands.
    without_commands = re.sub(r"\\[A-Za-z]+", " ", _LATEX_WORDS.sub(" ", text))
    return bool(re.search(r"\d|\\[A-Za-z]", text)) and not re.search(r"[A-Za-z]{2,}", without_commands)


def reference_answer(reference: str | None) -> str | None:
    """The final answer a reference holds (as written), or None when it holds none.

    Args:
        reference: ``"#### 72"``, a GSM8K worked solution ending in ``#### 72``, ``"72"``, a
            ``\\boxed{}`` solution, or a bare LaTeX answer.

    Returns:
        The answer text (``"72"``), or None for free text that is not a final answer.
    """
    if reference is None or not reference.strip():
        return None
    text = reference.strip()
    if "####" in text:
        answer = text.rsplit("####", 1)[1].strip().split("\n", 1)[0].strip()
        return answer or None
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    return text if _is_bare_answer(text) else None


def _unwrap(text: str) -> str:
    """Remove math delimiters and whole-answer wrappers such as ``\\boxed{...}``, repeatedly."""
    while True:
        before = text
        text = text.strip().strip("*").rstrip(_TRAILING).strip()
        math = _INLINE_MATH.fullmatch(text)
        if math:
            text = next(group for group in math.groups() if group is not None).strip()
        if text.startswith("\\displaystyle"):
            text = text[len("\\displaystyle") :].strip()
        for name in _WRAPPERS:
            match = re.match(rf"\\{name}\s*\{{", text)
            if match:
                content = _braced(text, match.end() - 1)
                if content is not None and match.end() + len(content) + 1 == len(text):
                    text = content.strip()
        if text == before:
            return text


def _strip_units(text: str) -> str:
    """``18 cm``, ``18\\text{ cm}``, ``72^\\circ``, ``38 people`` -> the number; anything else unchanged."""
    candidate = text
    for _ in range(3):
        candidate = _UNIT_TAIL.sub("", candidate).strip()
        if _PLAIN_NUMBER.fullmatch(candidate) or _GROUPED.fullmatch(candidate):
            return candidate
        if not candidate:
            break
    return text


def normalize_answer(text: str) -> str:
    """``text`` in the form the comparison reads (rules in the module docstring).

    Examples: ``"$\\boxed{1,234}$"`` -> ``"1234"``, ``"\\$18"`` -> ``"18"``,
    ``"18 \\text{ cm}"`` -> ``"18"``, ``"75\\%"`` -> ``"75%"``, ``"\\dfrac{3}{4}"`` -> ``"\\frac{3}{4}"``.
    """
    text = text.replace("−", "-").replace("×", "\\times ").replace("÷", "\\div ").replace("**", "^")
    text = _EMPHASIS.sub("", text)
    text = _unwrap(text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\(?:left|right)(?=[()\[\]|.]|\\[{}])", "", text)
    text = re.sub(_CURRENCY, "", text)
    text = re.sub(r"\\%|\s*\bpercent\b", "%", text)
    text = _strip_units(_unwrap(text))
    if _GROUPED.fullmatch(text):
        text = re.sub(_SEPARATORS, "", text)
    return re.sub(r"\s+", " ", text).strip()


def is_plain_number(normalized: str) -> bool:
    """True for an integer, decimal, ``a/b`` or percent, as ``normalize_answer`` leaves them."""
    return bool(_PLAIN_NUMBER.fullmatch(normalized))
