"""The teacher stage's rows: one per sample of a conversation, in input order, as compact frames."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from distillset import ids
from distillset.teacher.ledger import LedgerAnswer
from distillset.verify.task import VerifiableTask, task_from_metadata
from distillset.verify.verdict import Verdict

# Finished rows become a polars frame every this many rows, so output memory is compact strings.
FRAME_CHUNK = 1024

GENERATIONS_SCHEMA: dict[str, pl.DataType] = {
    "teacher_model": pl.String,
    "prompt_id": pl.String,
    "status": pl.String,
    "messages_json": pl.String,
    "response": pl.String,
    "finish_reason": pl.String,
    "request_hash": pl.String,
    "request_hashes": pl.List(pl.String),
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "latency_ms": pl.Float64,
    "attempts": pl.Int64,
    "response_id": pl.String,
    "served_model": pl.String,
    "simulated": pl.Boolean,
    "sampling_json": pl.String,
    "generated_at": pl.Datetime("us", "UTC"),
    "error": pl.String,
    "sample_index": pl.Int64,
    "reasoning": pl.String,
    "verdict": pl.String,
    "verdict_reason": pl.String,
    "verifier": pl.String,
    "verdict_expected": pl.String,
    "verdict_extracted": pl.String,
    "verdict_detail": pl.String,
}
"""The ``teacher_samples`` / ``teacher_generations`` columns of ``docs/engine.md``, in order."""

VERDICT_COLUMNS = ("verdict", "verdict_reason", "verifier", "verdict_expected", "verdict_extracted", "verdict_detail")


@dataclass(frozen=True)
class Conversation:
    """One prompt to answer, from the ``prompt_pool`` table.

    ``task`` is what makes its answers checkable (``distillset.verify.task_from_metadata``), or
    None: with a task, sampling stops early once enough samples passed.
    """

    prompt_id: str
    system: str | None
    turns: list[str]
    task: VerifiableTask | None = None


def conversations_from_frame(frame: pl.DataFrame) -> Iterator[Conversation]:
    """Conversations from rows with ``prompt_id``, ``system`` and ``turns`` (the prompt_pool layout).

    A single-turn row's ``reference`` and, when the frame has it, ``metadata_json`` (the source's
    MBPP / HumanEval / IFEval fields as a JSON object) give its verification task.
    """
    columns = [c for c in ("reference", "metadata_json") if c in frame.columns]
    for row in frame.select("prompt_id", "system", "turns", *columns).iter_rows(named=True):
        turns = list(row["turns"] or [])
        task = _task_of(row.get("reference"), row.get("metadata_json")) if len(turns) == 1 else None
        yield Conversation(prompt_id=row["prompt_id"], system=row["system"], turns=turns, task=task)


def _task_of(reference: str | None, metadata_json: str | None) -> VerifiableTask | None:
    metadata = None
    if metadata_json:
        try:
            metadata = json.loads(metadata_json)
        except ValueError:
            metadata = None
    try:
        return task_from_metadata(reference, metadata if isinstance(metadata, dict) else None)
    except ValueError:  # a malformed task (e.g. a HumanEval test without entry point): no verifier
        return None


def generation_row(
    *,
    model: str,
    prompt_id: str,
    messages: list[dict],
    hashes: list[str],
    answers: list[LedgerAnswer],
    error: str | None,
    simulated: bool,
    sampling_json: str,
    skipped: bool = False,
    sample_index: int = 0,
    verdict: Verdict | None = None,
) -> tuple:
    """One ``teacher_generations`` row (a tuple in ``GENERATIONS_SCHEMA`` order).

    ``simulated`` is the endpoint's flag; the row is simulated when any of its answers is (an
    answer's origin is what counts, not the endpoint of the run that reused it). ``skipped`` marks
    a conversation the budget did not allow (status ``skipped``, not ``failed``). ``verdict`` is
    the verifier's on the last answer (None when it was not verified: no answer).
    """
    last = answers[-1] if answers and error is None else None
    status = "ok" if error is None else "skipped" if skipped else "failed"
    if len(answers) == 1:  # a single-turn sample, the common case: no sums over one answer
        only = answers[0]
        prompt_tokens, completion_tokens = only.prompt_tokens, only.completion_tokens
        latency_ms, attempts = float(only.latency_ms), only.attempts
        cut, any_simulated = only.finish_reason == "length", bool(only.simulated)
    else:
        prompt_tokens = sum(a.prompt_tokens for a in answers)
        completion_tokens = sum(a.completion_tokens for a in answers)
        latency_ms = float(sum(a.latency_ms for a in answers))
        attempts = sum(a.attempts for a in answers)
        cut = any(a.finish_reason == "length" for a in answers)
        any_simulated = any(a.simulated for a in answers) if answers else simulated
    finish_reason = None
    if last is not None:
        finish_reason = "length" if cut else last.finish_reason
    return (
        model,
        prompt_id,
        status,
        _conversation_json(messages, last),
        last.content if last is not None else None,
        finish_reason,
        hashes[-1] if hashes else "",
        hashes,
        prompt_tokens,
        completion_tokens,
        latency_ms,
        attempts,
        last.response_id if last is not None else None,
        last.served_model if last is not None else None,
        any_simulated,
        sampling_json,
        last.created_at if last is not None else None,
        error,
        sample_index,
        last.reasoning if last is not None else None,
        *(
            (verdict.status, verdict.reason, verdict.verifier, verdict.expected, verdict.extracted, verdict.detail)
            if verdict is not None
            else (None,) * len(VERDICT_COLUMNS)
        ),
    )


def _conversation_json(messages: list[dict], last: LedgerAnswer | None) -> str:
    """Canonical JSON of the whole conversation. For a finished one it extends the last turn's
    stored request JSON (same key, same messages) by the answer instead of re-encoding it all."""
    if last is None:
        return ids.canonical_json(messages) if messages else "[]"
    return f"{last.messages_json[:-1]},{_message_json(messages[-1])}]"


def _message_json(message: dict) -> str:
    """``ids.canonical_json(message)``; a plain role-and-content message spliced without sorting a dict."""
    if len(message) == 2 and type(message.get("role")) is str and "content" in message:
        # Sorted keys: "content" before "role".
        role = message["role"]
        role_json = _ROLE_JSON.get(role) or ids.canonical_json(role)
        return f'{{"content":{ids.canonical_json(message["content"])},"role":{role_json}}}'
    return ids.canonical_json(message)


_ROLE_JSON = {role: ids.canonical_json(role) for role in ("assistant", "user", "system")}
"""The roles every row's last message has, encoded once (an encoder call per row saved)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SEPARATOR = "\x1f"
"""Joins a row's request hashes for ``_hashes_column``: hashes are hex, so it never occurs in one."""


def rows_frame(rows: list[tuple]) -> pl.DataFrame:
    """The frame ``pl.DataFrame(rows, schema=GENERATIONS_SCHEMA, orient="row")`` builds, column by column.

    Same columns, dtypes and values; cheaper per row because the two columns polars converts
    slowly from Python objects are built another way: the list of request hashes (~20 us a row
    as Python lists, most of a row's cost) and the timezone-aware timestamp (~5 us a row).
    """
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in GENERATIONS_SCHEMA]
    if len(columns) != len(GENERATIONS_SCHEMA):
        raise ValueError(f"a generation row has {len(columns)} values, not {len(GENERATIONS_SCHEMA)}")
    series = []
    for (name, dtype), values in zip(GENERATIONS_SCHEMA.items(), columns, strict=True):
        if name == "request_hashes":
            built = _hashes_column(name, values)
        elif name == "generated_at":
            built = _times_column(name, values)
        else:
            built = None
        series.append(built if built is not None else pl.Series(name, values, dtype=dtype))
    return pl.DataFrame(series)


def _hashes_column(name: str, values: tuple) -> pl.Series | None:
    """The ``List(String)`` column from each row's hashes joined and split again (None: not possible)."""
    # An empty list would come back as [""], and only lists of strings can be joined: such
    # columns (rare, a conversation that could not be sent) take polars' own path.
    if not all(type(v) is list and v for v in values):
        return None
    if any(type(h) is not str or _SEPARATOR in h for hashes in values for h in hashes):
        return None
    return pl.Series(name, [_SEPARATOR.join(v) for v in values], dtype=pl.String).str.split(_SEPARATOR)


def _times_column(name: str, values: tuple) -> pl.Series | None:
    """The ``Datetime("us", "UTC")`` column from exact microseconds since the epoch (None: a naive time)."""
    try:
        micros = [None if v is None else (v - _EPOCH) // _MICROSECOND for v in values]
    except TypeError:  # a naive datetime cannot be subtracted from the epoch: polars' own path
        return None
    return pl.Series(name, micros, dtype=pl.Int64).cast(GENERATIONS_SCHEMA[name])


class RowCollector:
    """Puts rows that finish out of order back in input order, and packs them into frames.

    The reorder buffer holds about as many rows as there are workers; finished rows become a
    frame every ``FRAME_CHUNK`` rows. With a ``sink``, each frame is handed to it as soon as it is
    packed (in input order, every sample of a prompt in the same frame) and not kept, so memory
    stays flat however many conversations are answered; without, ``frame`` returns them all.
    """

    def __init__(self, sink: Callable[[pl.DataFrame], None] | None = None) -> None:
        self._pending: dict[int, tuple] = {}
        self._next = 0
        self._buffer: list[tuple] = []
        self._frames: list[pl.DataFrame] = []
        self._sink = sink

    def add(self, index: int, row: tuple | list[tuple]) -> None:
        """Place the row (or the rows, one per sample) of input ``index``."""
        self._pending[index] = row if isinstance(row, list) else [row]
        while self._next in self._pending:
            self._buffer.extend(self._pending.pop(self._next))
            self._next += 1
        if len(self._buffer) >= FRAME_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            frame = rows_frame(self._buffer)
            self._buffer = []
            if self._sink is not None:
                self._sink(frame)
            else:
                self._frames.append(frame)

    def frame(self) -> pl.DataFrame:
        """Every row added, in input order (all indexes up to the last must have been added);
        with a sink, the last rows go to it and the frame is empty."""
        self._flush()
        if self._pending:
            raise AssertionError(f"{len(self._pending)} generation rows were never placed in order")
        return pl.concat(self._frames, how="vertical") if self._frames else pl.DataFrame(schema=GENERATIONS_SCHEMA)
