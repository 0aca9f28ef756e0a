"""Every evaluation recorded: ``$DISTILLSET_HOME/scorecards.sqlite``, table ``evaluations``.

SQLite beside the ledger, not the DuckDB catalog: DuckDB allows one writing process per file, and
``distillset evaluate`` must be able to record a student while a Dagster run holds the catalog.
Rows are only ever added; a repeated evaluation is a new row (it paid nothing, the ledger answered).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from distillset.scorecards.evaluate import BenchmarkScore

TEACHER = "teacher"
STUDENT = "student"
KINDS = (TEACHER, STUDENT)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    n INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    metrics_json TEXT NOT NULL,
    training_set TEXT,
    version TEXT,
    failed INTEGER NOT NULL,
    requests_paid INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    simulated INTEGER NOT NULL,
    evaluated_at TEXT NOT NULL,
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS evaluations_by_model ON evaluations (model, benchmark);
CREATE INDEX IF NOT EXISTS evaluations_by_version ON evaluations (training_set, version);
"""


@dataclass(frozen=True)
class Scorecard:
    """One recorded evaluation (a row of ``distillset scorecards``)."""

    model: str
    kind: str
    benchmark: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    metrics: dict
    student_of: str | None
    """``NAME:vNNNN``: the training set version a student was trained on (None for a teacher)."""
    failed: int
    requests_paid: int
    cache_hits: int
    simulated: bool
    evaluated_at: str
    run_id: str | None

    def as_dict(self) -> dict:
        """The JSON object ``distillset scorecards --json`` prints."""
        return {
            "model": self.model,
            "kind": self.kind,
            "benchmark": self.benchmark,
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "metrics": self.metrics,
            "student_of": self.student_of,
            "failed": self.failed,
            "requests_paid": self.requests_paid,
            "cache_hits": self.cache_hits,
            "simulated": self.simulated,
            "evaluated_at": self.evaluated_at,
            "run_id": self.run_id,
        }


def parse_student_of(text: str) -> tuple[str, str]:
    """``NAME:v0003`` -> (``NAME``, ``v0003``); a one-line ValueError otherwise."""
    name, sep, version = text.rpartition(":")
    if not sep or not name or not version.startswith("v") or not version[1:].isdigit():
        raise ValueError(f"--student-of wants NAME:vNNNN (a training set version, e.g. distill-x:v0003), not {text!r}")
    return name, version


class ScorecardStore:
    """The evaluations SQLite file; opened per use, safe for several processes (WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            yield None  # type: ignore[misc]
            return
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            yield connection
            connection.commit()
        finally:
            connection.close()

    def record(
        self,
        score: BenchmarkScore,
        *,
        kind: str,
        student_of: str | None = None,
        run_id: str | None = None,
        evaluated_at: datetime | None = None,
    ) -> Scorecard:
        """Add one evaluation; ``student_of`` (``NAME:vNNNN``) only for a student."""
        if kind not in KINDS:
            raise ValueError(f"kind must be teacher or student, not {kind!r}")
        name, version = parse_student_of(student_of) if student_of else (None, None)
        if kind == STUDENT and name is None:
            raise ValueError("a student scorecard needs the training set version it was trained on")
        when = (evaluated_at or datetime.now(UTC)).isoformat(timespec="seconds")
        with self._connect(write=True) as connection:
            connection.execute(
                "INSERT INTO evaluations (model, kind, benchmark, n, correct, accuracy, ci_low, ci_high, metrics_json,"
                " training_set, version, failed, requests_paid, cache_hits, simulated, evaluated_at, run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    score.model, kind, score.benchmark, score.n, score.correct, score.accuracy, score.ci_low,
                    score.ci_high, json.dumps(score.metrics, sort_keys=True), name, version, score.failed,
                    score.requests_paid, score.cache_hits, int(score.simulated), when, run_id,
                ),
            )  # fmt: skip
        return self.all(model=score.model, benchmark=score.benchmark)[-1]

    def all(
        self,
        *,
        model: str | None = None,
        kind: str | None = None,
        benchmark: str | None = None,
        training_set: str | None = None,
        version: str | None = None,
    ) -> list[Scorecard]:
        """Every recorded evaluation matching the filters, oldest first."""
        conditions, values = [], []
        for column, value in (
            ("model", model),
            ("kind", kind),
            ("benchmark", benchmark),
            ("training_set", training_set),
            ("version", version),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                values.append(value)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._connect() as connection:
            if connection is None:
                return []
            rows = connection.execute(
                "SELECT model, kind, benchmark, n, correct, accuracy, ci_low, ci_high, metrics_json, training_set,"
                f" version, failed, requests_paid, cache_hits, simulated, evaluated_at, run_id FROM evaluations {where}"
                " ORDER BY id",
                values,
            ).fetchall()
        return [_scorecard(row) for row in rows]

    def latest(self, **filters) -> list[Scorecard]:
        """The newest evaluation per (model, kind, benchmark, student_of), oldest first."""
        newest: dict[tuple, Scorecard] = {}
        for card in self.all(**filters):
            newest.pop((card.model, card.kind, card.benchmark, card.student_of), None)
            newest[(card.model, card.kind, card.benchmark, card.student_of)] = card
        return list(newest.values())

    def incumbent(self, benchmark: str, *, exclude_model: str) -> Scorecard | None:
        """The best teacher so far on ``benchmark`` (each model's latest evaluation), other than ``exclude_model``."""
        teachers = [c for c in self.latest(kind=TEACHER, benchmark=benchmark) if c.model != exclude_model]
        return max(teachers, key=lambda c: (c.accuracy, c.n), default=None)


def _scorecard(row: tuple) -> Scorecard:
    (model, kind, benchmark, n, correct, accuracy, ci_low, ci_high, metrics_json, training_set, version, failed,
     paid, hits, simulated, evaluated_at, run_id) = row  # fmt: skip
    return Scorecard(
        model=model,
        kind=kind,
        benchmark=benchmark,
        n=n,
        correct=correct,
        accuracy=accuracy,
        ci_low=ci_low,
        ci_high=ci_high,
        metrics=json.loads(metrics_json),
        student_of=f"{training_set}:{version}" if training_set else None,
        failed=failed,
        requests_paid=paid,
        cache_hits=hits,
        simulated=bool(simulated),
        evaluated_at=evaluated_at,
        run_id=run_id,
    )
