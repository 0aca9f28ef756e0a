"""The one result every verifier returns: a status, a stable reason code, and what was compared.

**Statuses.** ``correct`` (the answer passed), ``wrong`` (it was checked and failed: a different
final answer, no final answer, failing tests, an instruction not followed) and ``unverifiable``
(nothing could be decided: no verifier for the prompt, an answer too large or complex to compare
safely, a sandbox that could not start). Only ``correct`` ever counts as a pass.

**Reasons** are snake_case codes that never change meaning (tables and dashboards group on them):

| reason | status | verifier | meaning |
|---|---|---|---|
| ``correct`` | correct | math, code, ifeval | the answer passed |
| ``wrong_answer`` | wrong | math | the final answer differs from the reference |
| ``no_final_answer`` | wrong | math, self_consistency | no final answer could be read from the response |
| ``answer_too_long`` | unverifiable | math | the final answer is longer than the comparison bound |
| ``answer_too_complex`` | unverifiable | math | power towers, huge numbers, sums or integrals (unsafe to evaluate) |
| ``bad_reference`` | unverifiable | math | the reference has no answer math-verify can parse |
| ``no_code_block`` | wrong | code | no Python code in the answer |
| ``syntax_error`` | wrong | code | the code (or the program with its tests) does not compile |
| ``tests_failed`` | wrong | code | an assert failed or the program raised |
| ``timeout`` | wrong | code | killed at the wall-time or CPU-time limit |
| ``memory_limit`` | wrong | code | the program ran out of its address-space limit |
| ``file_size_limit`` | wrong | code | the program wrote a file past the size limit |
| ``sandbox_error`` | unverifiable | code | the sandbox itself could not run the program |
| ``instruction_not_followed`` | wrong | ifeval | at least one instruction failed (strict) |
| ``unsupported_instruction`` | unverifiable | ifeval | an instruction id or argument this engine has no checker for |
| ``agrees_with_majority`` | correct | self_consistency | the answer equals the majority answer of its group |
| ``disagrees_with_majority`` | wrong | self_consistency | the answer differs from the majority answer |
| ``no_majority`` | unverifiable | self_consistency | no answer reached the required share of votes |
| ``no_verifier`` | unverifiable | none | the prompt carries nothing verifiable |
| ``verifier_error`` | unverifiable | any | the verifier raised (the teacher stage records it, never a pass) |

A ``self_consistency`` "correct" is agreement among samples, not a check against ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

CORRECT = "correct"
WRONG = "wrong"
UNVERIFIABLE = "unverifiable"
STATUSES = (CORRECT, WRONG, UNVERIFIABLE)

# Detail sentences end up in tables and in `distillset explain`; past this they are cut.
MAX_DETAIL_CHARS = 300
# expected/extracted hold one answer, not a whole response.
MAX_VALUE_CHARS = 200


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to at most ``limit`` characters (an ellipsis marks the cut), None stays None."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one answer.

    Attributes:
        status: ``correct``, ``wrong`` or ``unverifiable``.
        reason: a stable snake_case code (table in the module docstring).
        verifier: ``math``, ``code``, ``ifeval``, ``self_consistency`` or ``none``.
        expected: what the answer was compared with, normalized (e.g. the reference ``72``).
        extracted: what was read from the answer (e.g. its final answer ``70``).
        detail: one short human sentence, e.g. ``expected 72, got 70``.
    """

    status: str
    reason: str
    verifier: str
    expected: str | None = None
    extracted: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        # Frozen: the clipped values go in through object.__setattr__, once, here.
        object.__setattr__(self, "expected", clip(self.expected, MAX_VALUE_CHARS))
        object.__setattr__(self, "extracted", clip(self.extracted, MAX_VALUE_CHARS))
        object.__setattr__(self, "detail", clip(self.detail, MAX_DETAIL_CHARS))

    @property
    def passed(self) -> bool:
        """True only for ``correct``: an unverifiable answer never passes."""
        return self.status == CORRECT

    def as_dict(self) -> dict[str, str | None]:
        """Plain values, one column each, for a polars or DuckDB row."""
        return {
            "status": self.status,
            "reason": self.reason,
            "verifier": self.verifier,
            "expected": self.expected,
            "extracted": self.extracted,
            "detail": self.detail,
        }


def no_verifier() -> Verdict:
    """The verdict of a prompt that carries nothing verifiable."""
    return Verdict(UNVERIFIABLE, "no_verifier", "none", detail="the prompt carries no reference, tests or instructions")
