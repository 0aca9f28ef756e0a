"""The public quality API: score_frame's contract, thresholds and patterns from configuration,
the quality gates and the summary stored as asset metadata.

Protects: input order and the caller's key column are kept, optional columns may be missing, bad
frames fail with a clear message, thresholds and disabled rules change verdicts, a user CSV of
extra refusal phrases (argument or DISTILLSET_REFUSAL_PATTERNS) is used, the score follows the
documented factors, gates fail with the measured value, and the summary counts what it claims.
"""

from __future__ import annotations

import polars as pl
import pytest

from distillset.quality.gates import GateResult, evaluate_gates
from distillset.quality.rules import QUALITY_RULES
from distillset.quality.score import score_frame
from distillset.quality.summary import quality_summary
from distillset.settings import QualityGates, QualityThresholds, SettingsError, load_settings

CLEAN = "Paris is the capital of France, and it is known for the Louvre and the Eiffel Tower."
REFUSAL = "I'm sorry, but I can't help with that."


def _frame(responses, **extra) -> pl.DataFrame:
    data = {
        "row_key": [f"k{i}" for i in range(len(responses))],
        "prompt_text": ["Tell me about Paris."] * len(responses),
        "response": responses,
    }
    data.update(extra)
    return pl.DataFrame(data, schema={name: pl.Utf8 for name in data})


def test_keeps_input_order_and_key_column_with_missing_optional_columns():
    responses = [CLEAN, REFUSAL, None, CLEAN + " Also, it hosts many museums."]
    frame = pl.DataFrame(
        {"example": [30, 10, 20, 5], "prompt_text": ["Tell me about Paris."] * 4, "response": responses}
    )
    scores = score_frame(frame, key_column="example", thresholds=QualityThresholds(), extra_patterns=None)
    assert scores.columns[0] == "example"
    assert scores.get_column("example").to_list() == [30, 10, 20, 5]
    assert scores.get_column("failed_rules").to_list() == [[], ["refusal"], ["empty"], []]
    assert scores.get_column("verifiable_result").null_count() == 4
    assert scores.get_column("is_truncated").to_list() == [False] * 4
    assert {"score", "passed", "failed_rules", "is_refusal", "repetition_ratio", "broken_table"} <= set(scores.columns)


def test_empty_frame_scores_to_empty_frame():
    scores = score_frame(_frame([]), thresholds=QualityThresholds(), extra_patterns=None)
    assert scores.height == 0
    assert "failed_rules" in scores.columns


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"row_key": ["a"], "response": ["x"]}), "missing column(s) prompt_text"),
        (pl.DataFrame({"row_key": ["a", "a"], "prompt_text": ["p", "p"], "response": ["x", "y"]}), "not unique"),
        (pl.DataFrame({"row_key": [None, "b"], "prompt_text": ["p", "p"], "response": ["x", "y"]}), "null 'row_key'"),
    ],
)
def test_bad_frames_fail_clearly(frame, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score_frame(frame, thresholds=QualityThresholds(), extra_patterns=None)


def test_score_is_the_failed_rules_factors_times_the_grade():
    frame = _frame([CLEAN, "x", CLEAN + "\n```python\nprint(1)\n"], finish_reason=["stop", "stop", "length"])
    scores = score_frame(frame, thresholds=QualityThresholds(), extra_patterns=None)
    rows = scores.to_dicts()
    assert rows[0]["passed"] is True and rows[0]["score"] == pytest.approx(rows[0]["grade"])
    assert rows[1]["failed_rules"] == ["too_short"] and rows[1]["score"] == pytest.approx(0.5 * rows[1]["grade"], 1e-3)
    assert rows[2]["failed_rules"] == ["truncated", "unbalanced_code_fence"]
    assert rows[2]["score"] == pytest.approx(0.4 * 0.7 * rows[2]["grade"], 1e-3)
    for row in rows:
        weighted = (
            0.25 * row["length_grade"]
            + 0.25 * row["verification_grade"]
            + 0.15 * row["repetition_grade"]
            + 0.15 * row["language_grade"]
            + 0.10 * row["ending_grade"]
            + 0.10 * row["format_grade"]
        )
        assert row["grade"] == pytest.approx(weighted, abs=1e-4)


def test_the_score_ranks_passing_answers_by_graded_signals():
    # Issue 11: every published row scored 1.0. Passing answers differ by length adequacy,
    # verified correctness, a clean ending, a wall of text and the share of the prompt's script.
    prompt = "Explain how a hash table handles collisions."
    detailed = (
        "A hash table maps keys to buckets with a hash function.\n\n"
        "When two keys land in the same bucket, chaining keeps a small list per bucket, while open addressing "
        "probes for the next free slot. Chaining is simple; open addressing is friendlier to caches.\n\n"
        "- Chaining: lists per bucket.\n- Open addressing: probe sequences."
    )
    terse = "Collisions are resolved by chaining or by probing."
    cut = "A hash table maps keys to buckets, and when two keys collide the table"
    wall = " ".join(f"Bucket {i} holds key {i * 3} after {i * 5} probes." for i in range(1, 50))
    mixed = detailed + "\n\n这是一个很好的问题，哈希表非常重要，冲突处理也很关键。"
    frame = pl.DataFrame(
        {
            "row_key": ["detailed", "terse", "cut", "wall", "mixed", "verified", "unverified"],
            "prompt_text": [prompt] * 5 + ["How many clips did she sell?"] * 2,
            "response": [detailed, terse, cut, wall, mixed] + ["She sold 48 + 24 = 72 clips.\n#### 72"] * 2,
            "reference": [None] * 5 + ["72", None],
        }
    )
    rows = {r["row_key"]: r for r in score_frame(frame, extra_patterns=None).iter_rows(named=True)}
    assert all(r["passed"] for r in rows.values()), {k: r["failed_rules"] for k, r in rows.items()}
    assert len({r["score"] for r in rows.values()}) == len(rows)
    assert all(0.0 < r["score"] < 1.0 for r in rows.values())
    assert rows["detailed"]["score"] > rows["terse"]["score"]  # length adequacy
    assert rows["detailed"]["score"] > rows["cut"]["score"] and rows["cut"]["ending_grade"] == 0.5
    assert rows["wall"]["format_grade"] < 1.0
    assert rows["mixed"]["language_grade"] < 1.0 and rows["mixed"]["language_mismatch"] is False
    assert rows["verified"]["score"] > rows["unverified"]["score"]  # verified correctness


def test_thresholds_change_verdicts_and_disabled_rules_do_not_fail():
    frame = _frame([CLEAN, REFUSAL])
    strict = score_frame(frame, thresholds=QualityThresholds(max_chars=20), extra_patterns=None)
    assert strict.get_column("is_too_long").to_list() == [True, True]
    lenient = score_frame(
        frame, thresholds=QualityThresholds(max_chars=20, disabled_rules=("too_long", "refusal")), extra_patterns=None
    )
    assert lenient.get_column("is_refusal").to_list() == [False, True]
    assert lenient.get_column("failed_rules").to_list() == [[], []]
    # A disabled rule costs nothing: the score is the grade alone.
    assert lenient.get_column("score").to_list() == lenient.get_column("grade").to_list()
    with pytest.raises(ValueError, match="DISTILLSET_QUALITY_DISABLED_RULES.*unknown value"):
        score_frame(frame, thresholds=QualityThresholds(disabled_rules=("nonsense",)), extra_patterns=None)


def test_thresholds_and_gates_from_env(monkeypatch):
    monkeypatch.setenv("DISTILLSET_QUALITY_MAX_CHARS", "500")
    monkeypatch.setenv("DISTILLSET_QUALITY_MIN_LENGTH_RATIO", "0.1")
    monkeypatch.setenv("DISTILLSET_QUALITY_DISABLED_RULES", "pii, broken_table")
    monkeypatch.setenv("DISTILLSET_GATE_MAX_REFUSAL_RATE", "0.2")
    monkeypatch.setenv("DISTILLSET_GATE_MIN_VERIFIABLE_ROWS", "3")
    settings = load_settings()
    thresholds = settings.quality.thresholds
    assert (thresholds.max_chars, thresholds.min_length_ratio) == (500, 0.1)
    assert thresholds.disabled_rules == ("pii", "broken_table")
    assert thresholds.min_chars == QualityThresholds().min_chars
    gates = settings.gates
    assert (gates.max_refusal_rate, gates.min_verifiable_rows) == (0.2, 3)
    assert gates.max_truncation_rate == QualityGates().max_truncation_rate
    monkeypatch.setenv("DISTILLSET_QUALITY_MAX_CHARS", "lots")
    with pytest.raises(SettingsError, match="DISTILLSET_QUALITY_MAX_CHARS"):
        load_settings()


def test_user_patterns_extend_the_table(tmp_path, monkeypatch):
    extra = tmp_path / "patterns.csv"
    extra.write_text(
        "pattern,language,kind,added,note\n"
        "Ich kann dabei nicht helfen,de,refusal,2026-11-29,German refusal\n"
        "I am DistillBot,en,self_identification,2026-11-29,our own assistant name\n",
        encoding="utf-8",
    )
    frame = _frame(["Ich kann dabei nicht helfen.", "Hello! I am DistillBot and I know Paris well."])
    monkeypatch.delenv("DISTILLSET_REFUSAL_PATTERNS", raising=False)
    shipped_only = score_frame(frame, thresholds=QualityThresholds())
    assert shipped_only.get_column("failed_rules").to_list() == [[], []]

    with_argument = score_frame(frame, thresholds=QualityThresholds(), extra_patterns=extra)
    assert with_argument.get_column("refusal_pattern").to_list() == ["ich kann dabei nicht helfen", None]
    assert with_argument.get_column("failed_rules").to_list() == [["refusal"], ["names_teacher"]]

    monkeypatch.setenv("DISTILLSET_REFUSAL_PATTERNS", str(extra))
    settings = load_settings()
    assert settings.quality.refusal_patterns == extra
    from_env = score_frame(frame, thresholds=QualityThresholds(), extra_patterns=settings.quality.refusal_patterns)
    assert from_env.get_column("failed_rules").to_list() == [["refusal"], ["names_teacher"]]


def test_bad_pattern_csv_names_file_and_line(tmp_path):
    extra = tmp_path / "bad.csv"
    extra.write_text("pattern,language,kind\nI refuse,en,rejection\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:2: kind 'rejection'"):
        score_frame(_frame([CLEAN]), thresholds=QualityThresholds(), extra_patterns=extra)
    missing = tmp_path / "missing_kind.csv"
    missing.write_text("pattern,language\nI refuse,en\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        score_frame(_frame([CLEAN]), thresholds=QualityThresholds(), extra_patterns=missing)


def _scores_with(refusals: int, clean: int, truncated: int = 0, correct: int = 0, incorrect: int = 0) -> pl.DataFrame:
    responses = [REFUSAL] * refusals + [CLEAN] * (clean + truncated)
    finish = ["stop"] * (refusals + clean) + ["length"] * truncated
    references = [None] * (refusals + clean + truncated)
    responses += ["The total is 12.\n#### 12"] * (correct + incorrect)
    finish += ["stop"] * (correct + incorrect)
    references += ["12"] * correct + ["13"] * incorrect
    return score_frame(
        _frame(responses, finish_reason=finish, reference=references),
        thresholds=QualityThresholds(),
        extra_patterns=None,
    )


def test_ten_percent_refusals_fail_the_refusal_gate_with_the_measured_value():
    results = {g.name: g for g in evaluate_gates(_scores_with(refusals=2, clean=18), QualityGates())}
    assert list(results) == ["refusal_rate", "truncation_rate", "verifiable_accuracy", "pass_rate"]
    refusal = results["refusal_rate"]
    assert isinstance(refusal, GateResult)
    assert refusal.passed is False
    assert refusal.value == pytest.approx(0.1)
    assert refusal.limit == 0.05
    assert "10.0%" in refusal.description
    assert results["truncation_rate"].passed is True and results["truncation_rate"].value == 0.0
    assert results["pass_rate"].passed is True and results["pass_rate"].value == pytest.approx(0.9)


def test_truncation_and_accuracy_gates():
    scores = _scores_with(refusals=0, clean=5, truncated=5, correct=4, incorrect=8)
    results = {g.name: g for g in evaluate_gates(scores, QualityGates())}
    assert results["truncation_rate"].passed is False
    assert results["truncation_rate"].value == pytest.approx(5 / 22)
    assert results["verifiable_accuracy"].passed is False
    assert results["verifiable_accuracy"].value == pytest.approx(4 / 12)
    few = {g.name: g for g in evaluate_gates(_scores_with(refusals=0, clean=3, incorrect=3), QualityGates())}
    assert few["verifiable_accuracy"].passed is True
    assert "not judged" in few["verifiable_accuracy"].description
    empty = {
        g.name: g for g in evaluate_gates(score_frame(_frame([]), thresholds=QualityThresholds(), extra_patterns=None))
    }
    assert empty["pass_rate"].passed is False and empty["pass_rate"].value is None


def test_summary_counts_rules_histogram_and_verifiable():
    scores = _scores_with(refusals=2, clean=6, truncated=1, correct=3, incorrect=1)
    summary = quality_summary(scores)
    assert summary["rows"] == 13
    assert summary["passed"] == 9
    assert summary["pass_rate"] == pytest.approx(9 / 13)
    assert set(summary["failed_rules"]) == set(QUALITY_RULES)
    assert summary["failed_rules"]["refusal"] == 2
    assert summary["failed_rules"]["truncated"] == 1
    assert summary["failed_rules"]["wrong_answer"] == 1
    assert list(summary["failed_rules"])[0] == "refusal"
    histogram = summary["score_histogram"]
    assert len(histogram) == 10 and histogram[0]["bin"] == "0.0-0.1" and histogram[-1]["bin"] == "0.9-1.0"
    assert sum(b["count"] for b in histogram) == 13
    # Refusals and the wrong answer score under a fifth (factors 0.1 and 0.2 of the grade).
    assert sum(histogram[i]["count"] for i in (0, 1)) == 3
    assert summary["verifiable"] == {
        "correct": 3,
        "wrong": 1,
        "no_final_answer": 0,
        "unverifiable": 0,
        "rows": 4,
        "checked": 4,
        "accuracy": 0.75,
    }
    assert summary["count"] == 13
    assert summary["histogram"] == [b["count"] for b in histogram]
    assert summary["min"] == pytest.approx(scores.get_column("score").min())
    assert summary["min"] <= summary["p25"] <= summary["median"] <= summary["p75"] <= summary["max"] < 1.0


def test_an_answer_without_a_final_answer_fails_and_counts_against_accuracy():
    # Issue 11: off-topic answers to GSM8K questions passed with score 1.0 and the accuracy gate
    # left them out. Here 6 right, 6 off-topic: accuracy 50%, not 100%.
    responses = ["48 + 24 = 72.\n#### 72"] * 6 + ["Here is an overview of clips and the context of this topic."] * 6
    scores = score_frame(_frame(responses, reference=["#### 72"] * 12), extra_patterns=None)
    assert scores.get_column("verifiable_result").to_list() == ["correct"] * 6 + ["no_final_answer"] * 6
    assert scores.get_column("failed_rules").to_list()[6:] == [["no_final_answer"]] * 6
    assert scores.get_column("passed").to_list() == [True] * 6 + [False] * 6
    gates = {g.name: g for g in evaluate_gates(scores, QualityGates(min_verifiable_rows=10))}
    assert gates["verifiable_accuracy"].value == pytest.approx(0.5)
    summary = quality_summary(scores)
    assert summary["verifiable"]["no_final_answer"] == 6 and summary["verifiable"]["accuracy"] == pytest.approx(0.5)
    assert summary["failed_rules"]["no_final_answer"] == 6


def test_gates_and_summary_accept_a_table_that_does_not_exist_yet():
    # catalog.read_table returns a frame without columns when the partition was never scored.
    results = evaluate_gates(pl.DataFrame(), QualityGates())
    assert [r.passed for r in results] == [True, True, True, False]
    summary = quality_summary(pl.DataFrame())
    assert (summary["rows"], summary["pass_rate"], summary["median"]) == (0, None, None)
    assert sum(summary["histogram"]) == 0 and set(summary["failed_rules"].values()) == {0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_chars": -1}, "DISTILLSET_QUALITY_MAX_CHARS=-1 must be at least 0"),
        ({"repetition_max_ratio": 1.5}, "DISTILLSET_QUALITY_REPETITION_MAX_RATIO=1.5 must be at most 1"),
        ({"loop_tail_chars": 0}, "DISTILLSET_QUALITY_LOOP_TAIL_CHARS=0 must be at least 1"),
    ],
)
def test_invalid_thresholds_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        QualityThresholds(**changes)
