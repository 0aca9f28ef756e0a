"""Final-answer checking against a reference with math-verify, safe to call from any thread.

``verify_math(answer, reference)`` reads the response's final answer (``extract.find_final_answer``:
boxed, then the last answer marker, then the last line), the reference's answer
(``extract.reference_answer``: GSM8K ``#### 72``, a worked solution, ``72``, LaTeX), normalizes
both (``extract.normalize_answer``) and asks math-verify whether they are equal: numbers compare
by value (``3/4`` = ``0.75`` = ``\\frac{3}{4}``), expressions symbolically (``2\\sqrt{2}`` =
``\\sqrt{8}``), floats rounded to 6 decimals (math-verify's default, so ``1/3`` = ``0.333333``).

**Threads.** math-verify bounds its work with ``signal.alarm`` by default, which raises
``ValueError`` off the main thread (Dagster ops and asyncio executors call from worker threads)
and, on the main thread, replaces the caller's own ``SIGALRM`` handler and cancels its pending
alarm. Here every call passes ``parsing_timeout=None`` and ``timeout_seconds=None``, on every
thread, so a verdict never depends on which thread computed it. The work is bounded instead by:

* the answer length (``max_answer_chars``, 200 by default; longer is ``answer_too_long``);
* a text screen before parsing, because the LaTeX parser evaluates some forms eagerly
  (``\\binom{10^8}{5\\cdot 10^7}`` or ``\\gcd(10^{10^{10}}, 6)`` hang in ``parse``): power
  towers, exponents above 1000, and big arguments of ``\\binom``/``!``/``\\gcd``/``\\lcm``/``mod``
  are ``answer_too_complex``, as are sums, products, integrals and limits;
* a screen of the parsed expression before comparing (``9^{9^{9}}`` hangs in ``verify``):
  the same rules on the sympy tree, plus integers over 4096 bits.

These bound the hazards found so far; there is no hard time limit, so an adversarial 200-character
expression that sympy simplifies slowly can still take seconds.

**Caches.** Parsed answers are kept in one ``functools.lru_cache`` of ``PARSE_CACHE_SIZE``
entries (the same reference is compared with N samples in best-of-N); math-verify's own caches are
bounded too (at most 20 entries each).

**math-verify behaviours worth knowing** (checked on 0.9.0): ``75%`` equals both ``75`` and
``0.75``; ``12,5`` reads as 12.5 (decimal comma) while ``1,234`` reads as 1234; ``1\\,234`` reads
as 235 and ``\\$18`` outside ``$...$`` as nothing (both normalized away here); ``2:30`` reads as 2
and ``1e3`` as 1 (left alone: rare in the answers this checks); a failed comparison inside
math-verify (a sympy error) is ``False``, so it shows here as ``wrong_answer``.
"""

from __future__ import annotations

import functools
import logging
import re

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
from math_verify import verify as math_verify_equal
from sympy import Basic, Derivative, Integer, Integral, Limit, Pow, Product, Sum, preorder_traversal
from sympy.functions.combinatorial.factorials import binomial, factorial, factorial2, subfactorial

from distillset.verify.extract import (
    MAX_ANSWER_CHARS,
    find_final_answer,
    is_plain_number,
    normalize_answer,
    reference_answer,
)
from distillset.verify.verdict import CORRECT, UNVERIFIABLE, WRONG, Verdict

PARSE_CACHE_SIZE = 4096
MAX_EXPONENT = 1000
MAX_EAGER_DIGITS = 4
MAX_INTEGER_BITS = 4096

_PLAIN = (ExprExtractionConfig(),)
_LATEX = (LatexExtractionConfig(), ExprExtractionConfig())
_CALCULUS = re.compile(r"\\(?:sum|prod|int|iint|iiint|oint|lim|partial)(?![A-Za-z])|\\frac\s*\{\s*d")
_EAGER = re.compile(r"\\(?:binom|dbinom|tbinom|choose|gcd|lcm|operatorname|bmod|pmod|mod|det)(?![A-Za-z])|!|\bmod\b")
_EXPONENT = re.compile(r"\^\s*(\{|\(|[-+]?\d+)")
_CALCULUS_TYPES = (Sum, Product, Integral, Limit, Derivative)
_EAGER_TYPES = (factorial, factorial2, subfactorial, binomial)


class _TimeoutWarningFilter(logging.Filter):
    """math-verify logs once per process that its timeout is off; here that is deliberate."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _TimeoutWarningFilter) for f in _logger.filters):
        _logger.addFilter(_TimeoutWarningFilter())


class _Unsafe(Exception):
    """An answer whose parsing or comparison could run for too long."""


def _exponents(text: str) -> list[str]:
    found = []
    for match in _EXPONENT.finditer(text):
        opener = match.group(1)
        if opener in "{(":
            closer = "}" if opener == "{" else ")"
            depth, start = 0, match.start(1)
            for index in range(start, len(text)):
                depth += text[index] == opener
                depth -= text[index] == closer
                if depth == 0:
                    found.append(text[start + 1 : index])
                    break
            else:
                found.append(text[start + 1 :])
        else:
            found.append(opener)
    return found


def _screen_text(text: str) -> None:
    if _CALCULUS.search(text):
        raise _Unsafe("sums, products, integrals and limits are not compared")
    for exponent in _exponents(text):
        if "^" in exponent or "!" in exponent:
            raise _Unsafe("power towers are not compared")
        if any(len(digits) > 4 or int(digits) > MAX_EXPONENT for digits in re.findall(r"\d+", exponent)):
            raise _Unsafe(f"exponents above {MAX_EXPONENT} are not compared")
    big = "^" in text or any(len(digits) > MAX_EAGER_DIGITS for digits in re.findall(r"\d+", text))
    if big and _EAGER.search(text):
        raise _Unsafe("binomials, factorials, gcd and mod of big numbers are not compared")


def _screen_expr(expr: object) -> None:
    if not isinstance(expr, Basic):
        return
    for node in preorder_traversal(expr):
        if isinstance(node, _CALCULUS_TYPES):
            raise _Unsafe("sums, products, integrals and limits are not compared")
        if isinstance(node, Integer) and int(node).bit_length() > MAX_INTEGER_BITS:
            raise _Unsafe("integers this large are not compared")
        if isinstance(node, Pow):
            exponent = node.exp
            if exponent.has(Pow) or exponent.has(*_EAGER_TYPES):
                raise _Unsafe("power towers are not compared")
            if exponent.is_Number and abs(exponent) > MAX_EXPONENT:
                raise _Unsafe(f"exponents above {MAX_EXPONENT} are not compared")
        if isinstance(node, _EAGER_TYPES) and any(
            arg.is_Number and abs(arg) > 10**MAX_EAGER_DIGITS for arg in node.args
        ):
            raise _Unsafe("binomials and factorials of big numbers are not compared")


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parsed(normalized: str) -> tuple:
    """math-verify's parse of a normalized answer (sympy objects, then its string form)."""
    _screen_text(normalized)
    if is_plain_number(normalized):
        result = parse(normalized, extraction_config=_PLAIN, parsing_timeout=None)
    else:
        latex = normalized.replace("%", "\\%") if "\\%" not in normalized else normalized
        result = parse(f"${latex}$", extraction_config=_LATEX, parsing_timeout=None)
    for item in result:
        _screen_expr(item)
    return tuple(result)


def _equal(gold: tuple, predicted: tuple) -> bool:
    return bool(gold and predicted and math_verify_equal(list(gold), list(predicted), timeout_seconds=None))


def answers_equivalent(first: str, second: str, *, max_answer_chars: int = MAX_ANSWER_CHARS) -> bool:
    """Whether two final answers (as extracted, not whole responses) are the same math.

    Symmetric: math-verify's comparison is not (the first argument is its "gold"), so both
    directions are tried. Answers too long or unsafe to compare are never equivalent.
    """
    a, b = normalize_answer(first), normalize_answer(second)
    if a == b:
        return bool(a)
    if len(a) > max_answer_chars or len(b) > max_answer_chars:
        return False
    try:
        parsed_a, parsed_b = _parsed(a), _parsed(b)
    except _Unsafe:
        return False
    return _equal(parsed_a, parsed_b) or _equal(parsed_b, parsed_a)


def _math_verdict(status: str, reason: str, expected: str | None, extracted: str | None, detail: str) -> Verdict:
    return Verdict(status, reason, "math", expected=expected, extracted=extracted, detail=detail)


def verify_math(answer: str, reference: str, *, max_answer_chars: int = MAX_ANSWER_CHARS) -> Verdict:
    """Check the final answer of a response against a reference answer.

    Args:
        answer: the whole response (reasoning included).
        reference: GSM8K ``"#### 72"``, a worked solution ending in ``#### 72``, ``"72"``, or
            LaTeX such as ``"\\frac{3}{4}"``.
        max_answer_chars: longest final answer (normalized) that is compared.

    Returns:
        ``correct``; ``wrong`` with ``wrong_answer`` or ``no_final_answer``; or ``unverifiable``
        with ``bad_reference``, ``answer_too_long`` or ``answer_too_complex``. ``expected`` and
        ``extracted`` hold the normalized reference and final answer.
    """
    gold_text = reference_answer(reference)
    expected = normalize_answer(gold_text) if gold_text is not None else None
    if not expected:
        return _math_verdict(UNVERIFIABLE, "bad_reference", None, None, "the reference holds no final answer")
    try:
        gold = _parsed(expected) if len(expected) <= max_answer_chars else ()
    except _Unsafe:
        gold = ()
    if not gold:
        return _math_verdict(UNVERIFIABLE, "bad_reference", expected, None, f"cannot parse the reference {expected!r}")
    found = find_final_answer(answer)
    extracted = normalize_answer(found.text) if found else ""
    if not extracted:
        return _math_verdict(WRONG, "no_final_answer", expected, None, f"expected {expected}, found no final answer")
    if len(extracted) > max_answer_chars:
        detail = f"the final answer is {len(extracted)} characters, over the {max_answer_chars} compared"
        return _math_verdict(UNVERIFIABLE, "answer_too_long", expected, extracted, detail)
    try:
        predicted = _parsed(extracted)
    except _Unsafe as exc:
        return _math_verdict(UNVERIFIABLE, "answer_too_complex", expected, extracted, str(exc))
    if _equal(gold, predicted) or (not predicted and extracted == expected):
        return _math_verdict(CORRECT, "correct", expected, extracted, f"expected {expected}, got {extracted}")
    return _math_verdict(WRONG, "wrong_answer", expected, extracted, f"expected {expected}, got {extracted}")
