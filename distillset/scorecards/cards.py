"""The scorecards of a training set version, for its dataset card and ``distillset versions``.

A published version is immutable (every file's sha256 is in its manifest), but students are
trained on it, and evaluated, after it is published. So the card (``README.md``) carries the
teacher's scorecard as it stood at publication, and ``SCORECARDS.md`` beside it (not part of the
checksummed files) is the card's scorecard section kept current: ``distillset evaluate
--student-of NAME:vNNNN`` rewrites it whole from the store after every student evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from distillset import storage
from distillset.scorecards.store import STUDENT, TEACHER, Scorecard, ScorecardStore, parse_student_of

SIDECAR = "SCORECARDS.md"
NO_LEAK = (
    "No scorecard question can be in this set: the scorecards ask the GSM8K test and IFEval files that every "
    "prompt is decontaminated against before the teacher is paid and every example again before publication "
    "(`training_examples_not_contaminated`)."
)


def _rows(cards: Sequence[Scorecard]) -> list[str]:
    lines = ["| model | benchmark | n | accuracy | 95% interval | evaluated |", "|---|---|---|---|---|---|"]
    for c in cards:
        simulated = " (simulated)" if c.simulated else ""
        lines.append(
            f"| `{c.model}`{simulated} | {c.benchmark} | {c.n} | {c.accuracy:.3f} | "
            f"{c.ci_low:.3f}-{c.ci_high:.3f} | {c.evaluated_at} |"
        )
    return lines


def scorecard_lines(teacher: Sequence[Scorecard], students: Sequence[Scorecard]) -> list[str]:
    """The card's "Scorecards" section: the teacher's, then the students trained on the version."""
    lines = ["## Scorecards", "", "Teacher, on the held-out benchmarks:", ""]
    lines += _rows(teacher) if teacher else ["_The teacher was not evaluated (no `teacher_scorecard`)._"]
    lines += ["", "Students trained on this version:", ""]
    lines += (
        _rows(students)
        if students
        else [f"_None yet: `distillset evaluate --model M --student-of NAME:vNNNN` records one in `{SIDECAR}`._"]
    )
    return lines + ["", NO_LEAK, ""]


def refresh_version_card(
    storage_url: str,
    student_of: str,
    store: ScorecardStore,
    teacher_model: str | None,
    storage_options: dict | None = None,
) -> str:
    """Rewrite ``SCORECARDS.md`` in version ``student_of`` (``NAME:vNNNN``); returns its path."""
    name, version = parse_student_of(student_of)
    fs, root = storage.filesystem(storage_url, storage_options)
    path = storage.join(root, name, version, SIDECAR)
    teacher = store.latest(model=teacher_model, kind=TEACHER) if teacher_model else []
    students = store.latest(kind=STUDENT, training_set=name, version=version)
    text = "\n".join([f"# {name} {version}: scorecards", "", *scorecard_lines(teacher, students)])
    storage.write_bytes_atomic(fs, path, text.encode("utf-8"))
    return storage.url_of(fs, path)
