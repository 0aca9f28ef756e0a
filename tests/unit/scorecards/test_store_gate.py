"""The scorecard store, the Wilson interval and the release gate, on real SQLite.

Protects: every evaluation is a row (teachers and students with the version they were trained
on); the incumbent is the best other teacher; a release is blocked only when even the top of its
interval is more than the margin below the incumbent; bad `--student-of` values get a one-line error.
"""

from __future__ import annotations

import pytest

from distillset.scorecards.evaluate import BenchmarkScore
from distillset.scorecards.gate import blocking_reason, compare
from distillset.scorecards.interval import wilson_interval
from distillset.scorecards.store import ScorecardStore, parse_student_of


def _score(model: str, correct: int, n: int = 200, benchmark: str = "gsm8k") -> BenchmarkScore:
    low, high = wilson_interval(correct, n)
    return BenchmarkScore(model, benchmark, n, correct, correct / n, low, high)


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-4) and high == pytest.approx(0.9448, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_the_store_keeps_every_evaluation_with_its_kind_and_version(tmp_path):
    store = ScorecardStore(tmp_path / "scorecards.sqlite")
    assert store.all() == []
    store.record(_score("teacher-a", 180), kind="teacher")
    store.record(_score("my-8b", 120), kind="student", student_of="distill-a:v0003")
    store.record(_score("my-8b", 120), kind="student", student_of="distill-a:v0003")
    cards = store.all()
    assert [(c.model, c.kind, c.student_of) for c in cards] == [
        ("teacher-a", "teacher", None),
        ("my-8b", "student", "distill-a:v0003"),
        ("my-8b", "student", "distill-a:v0003"),
    ]
    assert len(store.latest(kind="student", training_set="distill-a", version="v0003")) == 1
    assert cards[1].as_dict()["accuracy"] == 0.6
    with pytest.raises(ValueError, match="needs the training set version"):
        store.record(_score("x", 1), kind="student")


@pytest.mark.parametrize("bad", ["distill-a", "distill-a:3", ":v0003", "distill-a:vx"])
def test_student_of_must_name_a_version(bad):
    with pytest.raises(ValueError, match="NAME:vNNNN"):
        parse_student_of(bad)


def test_a_release_worse_beyond_its_interval_and_the_margin_is_blocked(tmp_path):
    store = ScorecardStore(tmp_path / "scorecards.sqlite")
    store.record(_score("old", 178), kind="teacher")  # 0.89
    store.record(_score("older", 120), kind="teacher")  # 0.60: not the incumbent
    weak = compare([_score("new-weak", 110)], store, benchmarks=["gsm8k"], margin=0.02)
    assert weak[0].incumbent.model == "old" and weak[0].worse
    reason = blocking_reason(weak)
    assert "nothing was paid for generation" in reason and "new-weak" in reason and "old" in reason

    close = compare([_score("new-close", 170)], store, benchmarks=["gsm8k"], margin=0.02)  # 0.85, top ~0.89
    assert not close[0].worse and blocking_reason(close) is None
    assert compare([_score("new-weak", 110)], store, benchmarks=["ifeval"], margin=0.02) == []


def test_the_first_release_has_no_incumbent_and_passes(tmp_path):
    store = ScorecardStore(tmp_path / "scorecards.sqlite")
    [only] = compare([_score("first", 10)], store, benchmarks=["gsm8k"], margin=0.02)
    assert only.incumbent is None and not only.worse and "no incumbent" in only.sentence()
