"""LLM-as-judge: a judge model rates every kept answer on a documented rubric, through the ledger.

The judge is any OpenAI-compatible model (by default the teacher itself, on the teacher's
endpoint). Each answer becomes one judge conversation (:func:`judge_conversations`): the system
prompt is :data:`JUDGE_RUBRIC` (the rubric and the strict output format), the user message the
conversation to rate. Judgments are obtained with :func:`distillset.teacher.generate.generate`, so they go
through the same append-only ledger as generations, keyed by request hash: a judgment is never paid
twice. The judge samples deterministically (temperature 0).

:func:`parse_judgment` reads the judge's answer (a JSON object, tolerating code fences and prose
around it); :func:`combine_scores` blends the heuristic score with the judgment:

    final = (1 - w) * heuristic + w * (judge - 1) / 9

where ``heuristic`` is the 0..1 score of ``quality_scores``, ``judge`` the 1..10 judgment and ``w``
``DISTILLSET_JUDGE_WEIGHT``. A missing judgment (a failed call, an unparseable answer, a row not
judged yet) keeps the heuristic score.

Configuration: :class:`distillset.settings.JudgeSettings` (``settings.judge``, the
``DISTILLSET_JUDGE_*`` variables).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import TypeVar

import polars as pl

from distillset.settings import JudgeSettings, TeacherSettings
from distillset.settings.tree import JUDGE_MAX_SCORE as MAX_SCORE
from distillset.settings.tree import JUDGE_MIN_SCORE as MIN_SCORE
from distillset.teacher.rows import Conversation

# The judge protocol: a judge request's system prompt carries this marker, and the answer to rate
# follows JUDGE_ANSWER_HEADING in its user message (the simulator answers such requests as a judge).
JUDGE_RUBRIC_MARKER = "[distillset judge rubric v1]"
JUDGE_ANSWER_HEADING = "[ANSWER TO RATE]"
# The conversation shown to the judge is cut to this many characters per message: a judge paid to
# read a 30 000-character answer in full costs more than the answer did.
MAX_MESSAGE_CHARS = 12_000

JUDGE_RUBRIC = f"""{JUDGE_RUBRIC_MARKER}
You are an impartial expert judge of AI assistant answers. You will see a conversation between a
user and an assistant, and the assistant's last answer to rate. Rate that answer on a scale of 1 to
10 against four criteria:

- Helpfulness: does it address what the user actually needs, with useful detail?
- Correctness: are its facts, reasoning, code and final results right? When a reference answer is
  given, a final result that contradicts it is a serious error.
- Instruction following: does it do exactly what was asked (format, length, constraints,
  language)?
- Clarity: is it well organized, easy to follow and free of filler or repetition?

Score bands:
- 9-10: excellent. Correct, complete, follows every instruction, clear; nothing to improve.
- 7-8: good. Correct and helpful, with minor gaps in detail, structure or style.
- 5-6: acceptable. Mostly correct but generic, incomplete, or ignores part of the instruction.
- 3-4: poor. Significant errors or omissions, or hard to follow; of little use.
- 1-2: unacceptable. Wrong, a refusal of a harmless request, off-topic, empty or harmful.

Output format (strict): reply with one JSON object and nothing else, exactly
{{"score": <an integer from 1 to 10>, "rationale": "<one or two sentences explaining the score>"}}"""
"""The judge's system prompt: the rubric, its score bands and the output format."""

_FENCE = re.compile(r"```[A-Za-z0-9_-]*")

Number = TypeVar("Number", float, pl.Expr)


def judge_generation_settings(judge: JudgeSettings, teacher: TeacherSettings) -> TeacherSettings:
    """Settings for ``distillset.teacher.generate.generate`` that ask ``judge`` (resolved with
    ``judge.for_teacher(teacher)``): the judge model and endpoint, deterministic sampling, one
    judgment per answer (never the teacher's best-of-N samples or pass-rate window), and the
    teacher's concurrency, rate limits, retries, timeout and budget."""
    judge = judge.for_teacher(teacher)
    return teacher.with_overrides(
        base_url=judge.base_url,
        api_key=judge.api_key,
        model=judge.model,
        # A best-of-N teacher (TEACHER_SAMPLES_PER_PROMPT=N) would otherwise have every answer
        # judged N times at N seeds: N paid judgments, N judge_scores rows for one answer.
        samples_per_prompt=1,
        max_answers_per_prompt=1,
        pass_rate_min=None,
        pass_rate_max=None,
        sampling=dataclasses.replace(
            teacher.sampling, temperature=0.0, top_p=1.0, max_tokens=judge.max_tokens, seed=None, system_prompt=None
        ),
    )


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + f"\n[... {len(text) - MAX_MESSAGE_CHARS} more characters not shown]"


def judge_prompt(messages: list[dict], reference: str | None = None) -> str:
    """The user message of one judge request: the conversation, an optional reference answer, and
    the last assistant answer after ``JUDGE_ANSWER_HEADING``."""
    answer_index = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if answer_index is None:
        raise ValueError("a conversation to judge needs an assistant answer")
    context = [
        f"[{str(m.get('role', '')).upper()}]\n{_clip(str(m.get('content') or ''))}" for m in messages[:answer_index]
    ]
    parts = ["Rate the assistant's last answer in this conversation.", "[CONVERSATION]", *context]
    if reference:
        parts += ["[REFERENCE ANSWER]", _clip(reference)]
    parts += [JUDGE_ANSWER_HEADING, _clip(str(messages[answer_index].get("content") or ""))]
    return "\n\n".join(parts)


def judge_conversations(rows: pl.DataFrame) -> list[Conversation]:
    """One judge conversation per answered row.

    Args:
        rows: ``prompt_id`` and ``messages_json`` (the ``deduplicated_generations`` layout), and
            optionally ``reference``; rows without an assistant answer are skipped.

    Returns:
        Conversations whose system prompt is :data:`JUDGE_RUBRIC` and whose single user turn is
        :func:`judge_prompt`, keyed by the judged row's ``prompt_id``.
    """
    has_reference = "reference" in rows.columns
    conversations = []
    for row in rows.iter_rows(named=True):
        messages = json.loads(row["messages_json"] or "[]")
        if not any(m.get("role") == "assistant" for m in messages):
            continue
        reference = row["reference"] if has_reference else None
        conversations.append(
            Conversation(prompt_id=row["prompt_id"], system=JUDGE_RUBRIC, turns=[judge_prompt(messages, reference)])
        )
    return conversations


def _json_objects(text: str):
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def parse_judgment(text: str | None) -> tuple[float | None, str | None, str | None]:
    """Read a judge's answer: the first JSON object with a ``score``, wherever it is in the text.

    Code fences and prose before or after the object are ignored. The score must be a number (or a
    numeric string) from 1 to 10; the rationale is optional.

    Returns:
        ``(score, rationale, None)`` on success, ``(None, None, error)`` otherwise, where ``error``
        says what was wrong (no JSON object, no score, not a number, out of range).
    """
    if text is None or not text.strip():
        return None, None, "empty judgment"
    candidates = [obj for obj in _json_objects(_FENCE.sub("", text)) if "score" in obj]
    if not candidates:
        return None, None, f"no JSON object with a score in the judgment: {text.strip()[:120]!r}"
    judgment = candidates[0]
    raw = judgment["score"]
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return None, None, f"score is not a number: {raw!r}"
    try:
        score = float(raw)
    except ValueError:
        return None, None, f"score is not a number: {raw!r}"
    if not math.isfinite(score) or not MIN_SCORE <= score <= MAX_SCORE:
        return None, None, f"score {raw!r} is outside {MIN_SCORE}-{MAX_SCORE}"
    rationale = judgment.get("rationale")
    rationale = str(rationale).strip() if rationale is not None and str(rationale).strip() else None
    return score, rationale, None


def combine_scores(heuristic: Number, judge_score: Number | None, weight: float) -> Number:
    """The final score: ``(1 - weight) * heuristic + weight * (judge_score - 1) / 9``.

    Both terms are on 0..1: the heuristic already, the judgment once mapped from 1..10. A missing
    judgment (None) keeps the heuristic score. Works on floats and, element-wise, on polars
    expressions (where a null judgment also keeps the heuristic).

    Args:
        heuristic: the ``quality_scores.score`` of the answer, 0..1.
        judge_score: the judge's score, 1..10, or None.
        weight: the judgment's share, 0..1 (``DISTILLSET_JUDGE_WEIGHT``).

    Raises:
        ValueError: ``weight`` outside [0, 1], or a float ``judge_score`` outside [1, 10].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if judge_score is None:
        return heuristic
    combined = (1.0 - weight) * heuristic + weight * (judge_score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)
    if isinstance(judge_score, pl.Expr):
        return pl.when(judge_score.is_null()).then(heuristic).otherwise(combined)
    if not MIN_SCORE <= judge_score <= MAX_SCORE:
        raise ValueError(f"judge_score must be in [{MIN_SCORE}, {MAX_SCORE}], got {judge_score}")
    return combined


JUDGE_SCORES_SCHEMA: dict[str, pl.DataType] = {
    "teacher_model": pl.String,
    "prompt_id": pl.String,
    "judge_model": pl.String,
    "judge_score": pl.Float64,
    "rationale": pl.String,
    "error": pl.String,
    "request_hash": pl.String,
    "answer_request_hash": pl.String,
    "simulated": pl.Boolean,
}
"""The ``judge_scores`` columns of ``docs/engine.md``, in order."""


def judge_scores_frame(teacher_model: str, answers: pl.DataFrame, judgments: pl.DataFrame) -> pl.DataFrame:
    """The ``judge_scores`` rows: one per judged answer, parsed.

    Args:
        teacher_model: the partition.
        answers: the judged rows (``prompt_id``, ``request_hash`` of the answer).
        judgments: what ``generate`` returned for ``judge_conversations(answers)`` (``prompt_id``,
            ``status``, ``response``, ``request_hash``, ``error``, ``simulated``, ``teacher_model``
            = the judge model).
    """
    answer_hash = (
        dict(zip(answers["prompt_id"].to_list(), answers["request_hash"].to_list(), strict=True))
        if answers.height
        else {}
    )
    rows = []
    for row in judgments.iter_rows(named=True):
        score, rationale, error = (None, None, row["error"] or "judge call failed")
        if row["status"] == "ok":
            score, rationale, error = parse_judgment(row["response"])
        rows.append(
            (
                teacher_model,
                row["prompt_id"],
                row["teacher_model"],
                score,
                rationale,
                error,
                row["request_hash"],
                answer_hash.get(row["prompt_id"]),
                row["simulated"],
            )
        )
    return pl.DataFrame(rows, schema=JUDGE_SCORES_SCHEMA, orient="row")


def score_histogram(scores: pl.DataFrame) -> dict[str, int]:
    """Judged rows per integer score band (``"1"`` .. ``"10"``), every band listed."""
    counts = dict.fromkeys((str(s) for s in range(MIN_SCORE, MAX_SCORE + 1)), 0)
    if scores.height:
        for value in scores["judge_score"].drop_nulls().to_list():
            # Half-up, not round()'s half-to-even: 6.5 and 7.5 land in the bands above them alike.
            counts[str(int(min(MAX_SCORE, max(MIN_SCORE, math.floor(value + 0.5)))))] += 1
    return counts
