"""The verifiable-answer verdict of every scored row, from ``distillset.verify`` (one verifier for all).

A row is verifiable when its ``reference`` holds a final answer (``distillset.verify.task_from_metadata``:
GSM8K ``#### 72``, a worked solution ending in ``#### 72``, ``72``, ``\\frac{3}{4}``...). Its answer
is then checked by the math verifier (math-verify equivalence of the final answers), and the
verdict becomes four columns that ``sql/quality/verifiable.sql`` hands to the rules and the score:

| ``verifiable_result`` | when | rule it fails |
|---|---|---|
| ``correct`` | the final answer equals the reference | none |
| ``wrong`` | a final answer was found and differs | ``wrong_answer`` |
| ``no_final_answer`` | no final answer could be read (an off-topic or unfinished answer) | ``no_final_answer`` |
| ``unverifiable`` | not safe to compare (``answer_too_long``, ``answer_too_complex``, ``bad_reference``) | none |
| NULL | the row carries nothing verifiable | none |

``verifiable_reason`` is the verifier's stable reason code (``distillset.verify.verdict``),
``verifiable_expected`` the normalized reference answer and ``verifiable_answer`` the normalized
final answer read from the response (text: ``72``, ``\\frac{3}{4}``). The accuracy gate counts
``correct`` against ``correct + wrong + no_final_answer``: a non-answer is never left out.

``numeric_tolerance`` (``DISTILLSET_QUALITY_NUMERIC_TOLERANCE``) widens the comparison of two plain
numbers: a ``wrong_answer`` whose numbers are within that relative tolerance counts as correct.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from distillset.verify import task_from_metadata, verify
from distillset.verify.verdict import CORRECT, UNVERIFIABLE, Verdict

VERDICT_SCHEMA: dict[str, pl.DataType] = {
    "verifiable_result": pl.Utf8,
    "verifiable_reason": pl.Utf8,
    "verifiable_expected": pl.Utf8,
    "verifiable_answer": pl.Utf8,
}
"""The verdict columns, in the order ``quality_scores`` lists them."""

RESULTS = ("correct", "wrong", "no_final_answer", "unverifiable")
"""The values of ``verifiable_result`` (NULL: not verifiable)."""

CHECKED_RESULTS = ("correct", "wrong", "no_final_answer")
"""The results the accuracy gate judges from: every answer that was checked."""


def verdict_result(verdict: Verdict) -> str:
    """The readable ``verifiable_result`` of a verdict (table in the module docstring)."""
    if verdict.status == CORRECT:
        return "correct"
    if verdict.status == UNVERIFIABLE:
        return "unverifiable"
    return "no_final_answer" if verdict.reason == "no_final_answer" else "wrong"


def verifiable_verdicts(
    responses: Sequence[str | None], references: Sequence[str | None], *, numeric_tolerance: float = 0.0
) -> pl.DataFrame:
    """One verdict row per (response, reference) pair, in input order (``VERDICT_SCHEMA``).

    Pairs that repeat (the same answer to the same reference, as in best-of-N or a benchmark) are
    verified once.

    Args:
        responses: the answers (None counts as an empty answer).
        references: the rows' reference answers (None: not verifiable).
        numeric_tolerance: relative tolerance for two plain numbers (see the module docstring).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references")
    cache: dict[tuple[str, str], tuple] = {}
    rows = []
    for response, reference in zip(responses, references, strict=True):
        if reference is None:
            rows.append((None, None, None, None))
            continue
        key = (response or "", reference)
        if key not in cache:
            cache[key] = _verdict_row(key[0], reference, numeric_tolerance)
        rows.append(cache[key])
    return pl.DataFrame(rows, schema=VERDICT_SCHEMA, orient="row")


def _verdict_row(response: str, reference: str, numeric_tolerance: float) -> tuple:
    task = task_from_metadata(reference, None)
    if task is None:
        return (None, None, None, None)
    verdict = verify(response, task)
    result, reason = verdict_result(verdict), verdict.reason
    if reason == "wrong_answer" and _within(verdict.expected, verdict.extracted, numeric_tolerance):
        result, reason = "correct", "correct"
    return (result, reason, verdict.expected, verdict.extracted)


def _within(expected: str | None, extracted: str | None, tolerance: float) -> bool:
    try:
        gold, found = float(expected or ""), float(extracted or "")
    except ValueError:
        return False
    return abs(found - gold) <= tolerance * max(1.0, abs(gold))
