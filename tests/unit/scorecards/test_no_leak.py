"""No evaluation question can reach a training set: the scorecard sets ARE the decontamination sets.

Protects: the files the scorecards read are exactly the shipped decontamination benchmarks, and
the real decontamination index flags every scorecard question (so `prompt_pool` drops it before
the teacher and `training_examples_not_contaminated` blocks it before publication).
"""

from __future__ import annotations

from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
from distillset.scorecards.sets import BENCHMARKS, benchmark_path, load_questions


def test_the_scorecard_files_are_the_decontamination_files():
    protected = {b.path.resolve() for b in default_benchmarks()}
    assert {benchmark_path(name).resolve() for name in BENCHMARKS} <= protected


def test_every_scorecard_question_is_flagged_as_contaminated():
    index = BenchmarkIndex.build(default_benchmarks())
    for name in BENCHMARKS:
        questions = load_questions(name)
        found = index.find([q.question_id for q in questions], [q.prompt for q in questions])
        missed = set(q.question_id for q in questions) - set(found["id"].to_list())
        assert not missed, f"{name}: {sorted(missed)[:5]} would not be caught by decontamination"
