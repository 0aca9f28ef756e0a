"""Thresholds of the quality rules and limits of the quality gates, from the environment.

Every field of :class:`QualityThresholds` reads ``DISTILLSET_QUALITY_<FIELD NAME IN CAPITALS>`` and
every field of :class:`QualityGates` reads ``DISTILLSET_GATE_<FIELD NAME IN CAPITALS>``; an unset
or empty variable keeps the default documented on the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from distillset.config import env_float, env_int, env_str


# Rule name -> one-line description, in the order failed_rules lists them (sql/quality/score.sql).
QUALITY_RULES: dict[str, str] = {
    "empty": "The answer is missing or only whitespace.",
    "truncated": "The teacher stopped at the token limit (finish_reason = 'length').",
    "too_short": "The answer is shorter than the minimum, or tiny next to a long prompt.",
    "too_long": "The answer is longer than the maximum length.",
    "refusal": "The answer refuses or deflects (a phrase from the refusal pattern table opens it).",
    "repetitive": "Repeated lines, repeated 4-grams or a looping tail.",
    "language_mismatch": "The answer is in another script than the prompt (CJK vs Latin).",
    "wrong_answer": "The final number differs from the numeric reference answer.",
    "pii": "An e-mail address or phone number appears in the answer.",
    "secret": "An API key, access token or private key appears in the answer.",
    "names_teacher": "The teacher names itself or its maker (\"I am Llama\", \"I'm ChatGPT\").",
    "unbalanced_code_fence": "An odd number of ``` fences: a code block never closes.",
    "broken_table": "Consecutive Markdown table rows have different numbers of cells.",
}


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the SQL quality rules (``sql/quality/*.sql`` explain each rule).

    Attributes:
        min_chars: an answer shorter than this (characters, trimmed) is ``too_short``.
        max_chars: an answer longer than this is ``too_long``.
        ratio_min_prompt_chars: from this prompt length on, and when the row has no reference, an
            answer under ``min_length_ratio`` times the prompt length is ``too_short``.
        min_length_ratio: see ``ratio_min_prompt_chars``.
        refusal_head_chars: a refusal phrase opening a sentence within this many first characters
            is a refusal.
        refusal_short_chars: in an answer this short, an unquoted refusal phrase anywhere is one.
        repetition_max_ratio: repeated-line or repeated 4-gram share above this is ``repetitive``.
        repetition_min_lines: fewer (long enough) lines than this: the line ratio is not judged.
        repetition_min_line_chars: shorter lines ("```", "}") are ignored by the line ratio.
        repetition_min_ngrams: fewer 4-grams than this: the n-gram ratio is not judged.
        repetition_max_tokens: only the first tokens are read for 4-grams (bounds the cost).
        loop_tail_chars: the length of the answer's tail looked for as a loop.
        loop_min_repeats: the tail repeating this many times is a looping tail.
        loop_window_chars: the tail is counted in this many last characters.
        language_min_units: answers with fewer script units (CJK characters + Latin words) are not
            judged for language.
        language_min_share: an answer whose share of the prompt's script is under this mismatches.
        numeric_tolerance: relative tolerance of the verifiable answer comparison.
        disabled_rules: rule names (see ``QUALITY_RULES``) that never fail a row; from the
            environment as a comma-separated list.
    """

    min_chars: int = 2
    max_chars: int = 32_000
    ratio_min_prompt_chars: int = 1_000
    min_length_ratio: float = 0.05
    refusal_head_chars: int = 200
    refusal_short_chars: int = 300
    repetition_max_ratio: float = 0.5
    repetition_min_lines: int = 4
    repetition_min_line_chars: int = 8
    repetition_min_ngrams: int = 20
    repetition_max_tokens: int = 4_000
    loop_tail_chars: int = 50
    loop_min_repeats: int = 3
    loop_window_chars: int = 1_000
    language_min_units: int = 10
    language_min_share: float = 0.3
    numeric_tolerance: float = 1e-6
    disabled_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"quality threshold {spec.name} must not be negative (got {value})")
        for name in ("min_length_ratio", "repetition_max_ratio", "language_min_share"):
            if getattr(self, name) > 1:
                raise ValueError(f"quality threshold {name} is a share and must be at most 1 (got {getattr(self, name)})")
        for name in ("refusal_head_chars", "loop_tail_chars", "repetition_min_ngrams", "repetition_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"quality threshold {name} must be at least 1 (got {getattr(self, name)})")
        unknown = sorted(set(self.disabled_rules) - set(QUALITY_RULES))
        if unknown:
            raise ValueError(f"unknown quality rule(s) to disable: {', '.join(unknown)}; known: {', '.join(QUALITY_RULES)}")

    @classmethod
    def from_env(cls) -> "QualityThresholds":
        """The defaults, overridden by ``DISTILLSET_QUALITY_*`` variables."""
        return cls(**_fields_from_env(cls, "DISTILLSET_QUALITY_"))

    def sql_parameters(self) -> dict:
        """The thresholds as named SQL parameters (``$min_chars``...)."""
        params = dataclasses.asdict(self)
        params["disabled_rules"] = list(self.disabled_rules)
        return params


@dataclass(frozen=True)
class QualityGates:
    """Limits a scored generation set must meet before it may become a training set.

    Attributes:
        max_refusal_rate: share of refusals (and deflections) allowed; one refusal in twenty
            already teaches a student to refuse.
        max_truncation_rate: share of answers cut by the token limit allowed.
        min_verifiable_accuracy: share of correct answers among the rows with a numeric
            reference whose answer was found (correct / (correct + incorrect)).
        min_verifiable_rows: the accuracy gate only judges from this many such rows on; below, a
            few rows would make it flip on noise.
        min_pass_rate: share of rows passing every rule; under it the teacher or the prompts are
            broken, not a few answers.
    """

    max_refusal_rate: float = 0.05
    max_truncation_rate: float = 0.05
    min_verifiable_accuracy: float = 0.5
    min_verifiable_rows: int = 10
    min_pass_rate: float = 0.5

    @classmethod
    def from_env(cls) -> "QualityGates":
        """The defaults, overridden by ``DISTILLSET_GATE_*`` variables."""
        return cls(**_fields_from_env(cls, "DISTILLSET_GATE_"))


def _fields_from_env(cls, prefix: str) -> dict:
    values = {}
    for spec in dataclasses.fields(cls):
        name = prefix + spec.name.upper()
        if spec.type in ("int", int):
            value = env_int(name, None)
        elif spec.type in ("float", float):
            value = env_float(name, None)
        else:
            raw = env_str(name)
            value = None if raw is None else tuple(part.strip() for part in raw.split(",") if part.strip())
        if value is not None:
            values[spec.name] = value
    return values
