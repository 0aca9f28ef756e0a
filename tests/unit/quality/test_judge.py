"""The LLM-as-judge engine (distillset/quality/judge.py) and the simulator's judge mode.

Protects: the rubric documents its criteria, bands and strict output format; judgments are parsed
from plain, fenced or prose-wrapped JSON, and malformed ones (garbage, no score, a score out of
1-10, not a number) become a reason instead of a score; ``combine_scores`` follows its documented
formula on floats and on polars columns, and a missing judgment keeps the heuristic score; the
judge settings default to the teacher's model and endpoint without leaking the teacher's key to
another host; judgments are obtained through the real simulator over HTTP and the ledger, so a
second run pays for nothing; the simulated judge answers parse and rate refusals low; training
examples blend in judgments of the same answer only and drop those under the minimum score.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from distillset import ids
from distillset.quality.judge import (
    JUDGE_RUBRIC,
    JUDGE_RUBRIC_MARKER,
    combine_scores,
    judge_conversations,
    judge_generation_settings,
    judge_scores_frame,
    parse_judgment,
    score_histogram,
)
from distillset.settings import JudgeSettings, SettingsError, TeacherSettings, load_settings
from distillset.simulator.answers import REFUSAL_EN, compose_answer
from distillset.simulator.server import DEFAULT_MODELS, TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.training.examples import build_training_examples

MODEL = DEFAULT_MODELS[0]

# ----- rubric and parsing -----


def test_rubric_documents_criteria_bands_and_output_format():
    for words in (
        "Helpfulness",
        "Correctness",
        "Instruction following",
        "Clarity",
        "9-10",
        "1-2",
        '"score"',
        '"rationale"',
    ):
        assert words in JUDGE_RUBRIC, words
    assert JUDGE_RUBRIC.startswith(JUDGE_RUBRIC_MARKER)


@pytest.mark.parametrize(
    "text",
    [
        '{"score": 7, "rationale": "Correct but terse."}',
        'Here is my evaluation:\n```json\n{"score": 7, "rationale": "Correct but terse."}\n```\nHope it helps.',
        'My verdict is {"score": "7", "rationale": "Correct but terse."} as requested.',
        '```\n{"rationale": "Correct but terse.", "score": 7.0}\n```',
    ],
)
def test_judgment_is_found_in_plain_fenced_or_wrapped_json(text):
    assert parse_judgment(text) == (7.0, "Correct but terse.", None)


def test_first_object_with_a_score_wins_and_rationale_is_optional():
    score, rationale, error = parse_judgment('Criteria: {"clarity": "good"}. Final: {"score": 9}')
    assert (score, rationale, error) == (9.0, None, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"score": 11, "rationale": "x"}', "outside 1-10"),
        ('{"score": 0, "rationale": "x"}', "outside 1-10"),
        ('{"score": "high", "rationale": "x"}', "not a number"),
        ('{"score": true}', "not a number"),
        ('{"score": [7]}', "not a number"),
        ('{"rating": 7}', "no JSON object with a score"),
        ("The answer deserves a seven.", "no JSON object with a score"),
        ('{"score": 7, "rationale": ', "no JSON object with a score"),
        ("   ", "empty"),
        (None, "empty"),
    ],
)
def test_malformed_judgment_is_an_error_not_a_score(text, reason):
    score, rationale, error = parse_judgment(text)
    assert score is None and rationale is None
    assert reason in error


# ----- combining scores -----


@pytest.mark.parametrize("heuristic", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("judge", [1, 4, 10])
@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 1.0])
def test_combine_scores_follows_the_documented_formula(heuristic, judge, weight):
    combined = combine_scores(heuristic, judge, weight)
    assert combined == pytest.approx((1 - weight) * heuristic + weight * (judge - 1) / 9)
    assert 0.0 <= combined <= 1.0


def test_combine_scores_edges_and_missing_judgment():
    assert combine_scores(0.6, 10, 1.0) == pytest.approx(1.0)
    assert combine_scores(0.6, 1, 1.0) == pytest.approx(0.0)
    assert combine_scores(0.6, 3, 0.0) == pytest.approx(0.6)
    assert combine_scores(0.6, None, 0.8) == 0.6
    with pytest.raises(ValueError, match="weight"):
        combine_scores(0.6, 5, 1.5)
    with pytest.raises(ValueError, match="judge_score"):
        combine_scores(0.6, 12, 0.5)


def test_combine_scores_on_columns_matches_the_scalar_form():
    frame = pl.DataFrame({"h": [0.2, 0.9, 0.5], "j": [8.0, None, 1.0]})
    out = frame.select(combine_scores(pl.col("h"), pl.col("j"), 0.3).alias("s"))["s"].to_list()
    expected = [combine_scores(h, j, 0.3) for h, j in frame.iter_rows()]
    assert out == pytest.approx(expected)
    assert out[1] == 0.9  # no judgment: the heuristic score


# ----- settings -----


def test_settings_default_to_the_teacher_and_read_overrides(monkeypatch):
    teacher = TeacherSettings(
        base_url="https://teacher.example/v1", api_key="teacher-key", model="meta-llama/Llama-3.3-70B-Instruct"
    )
    judge = load_settings().judge.for_teacher(teacher)
    assert (judge.model, judge.base_url, judge.api_key, judge.weight, judge.min_score) == (
        teacher.model,
        teacher.base_url,
        "teacher-key",
        0.5,
        None,
    )
    assert "teacher-key" not in repr(judge)

    monkeypatch.setenv("DISTILLSET_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("DISTILLSET_JUDGE_BASE_URL", "https://judge.example/v1")
    monkeypatch.setenv("DISTILLSET_JUDGE_WEIGHT", "0.25")
    monkeypatch.setenv("DISTILLSET_JUDGE_MIN_SCORE", "6")
    judge = load_settings().judge.for_teacher(teacher)
    assert (judge.model, judge.base_url, judge.weight, judge.min_score) == (
        "judge-model",
        "https://judge.example/v1",
        0.25,
        6.0,
    )
    assert judge.api_key is None, "the teacher's key must not go to another endpoint"
    monkeypatch.setenv("DISTILLSET_JUDGE_API_KEY", "judge-key")
    assert load_settings().judge.for_teacher(teacher).api_key == "judge-key"

    settings = judge_generation_settings(judge, teacher)
    assert (settings.model, settings.sampling.temperature, settings.base_url, settings.sampling.system_prompt) == (
        "judge-model",
        0.0,
        judge.base_url,
        None,
    )
    assert settings.max_concurrency == teacher.max_concurrency


def test_settings_reject_bad_values(monkeypatch):
    monkeypatch.setenv("DISTILLSET_JUDGE_WEIGHT", "1.5")
    with pytest.raises(SettingsError, match="DISTILLSET_JUDGE_WEIGHT"):
        load_settings()
    monkeypatch.setenv("DISTILLSET_JUDGE_WEIGHT", "0.5")
    monkeypatch.setenv("DISTILLSET_JUDGE_MIN_SCORE", "42")
    with pytest.raises(SettingsError, match="DISTILLSET_JUDGE_MIN_SCORE"):
        load_settings()


def test_judge_enabled_reads_yes_no_words(monkeypatch):
    assert load_settings().judge.enabled is False
    for raw, expected in (("true", True), ("1", True), ("YES", True), ("off", False), ("0", False)):
        monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", raw)
        assert load_settings().judge.enabled is expected
    monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", "maybe")
    with pytest.raises(SettingsError, match="DISTILLSET_JUDGE_ENABLED"):
        load_settings()


# ----- judgments over HTTP, through the ledger -----


def _answered_rows() -> pl.DataFrame:
    """Conversations answered by the simulated teacher, plus a refusal and a one-word answer."""
    questions = [
        f"Explain how {topic} works, with an example."
        for topic in ("photosynthesis", "compound interest", "TCP retransmission", "a hash map", "vaccination")
    ]
    rows = []
    for index, question in enumerate(questions):
        messages = [{"role": "user", "content": question}]
        answer = compose_answer(ids.sha256_hex(question), messages)
        rows.append((f"p{index}", json.dumps(messages + [{"role": "assistant", "content": answer}]), f"h{index}"))
    refusal = [{"role": "user", "content": "Write a poem about rivers."}, {"role": "assistant", "content": REFUSAL_EN}]
    short = [
        {"role": "user", "content": "What is 12 times 12? Show your work."},
        {"role": "assistant", "content": "144"},
    ]
    two_turn = [
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "Seven is a prime number."},
        {"role": "user", "content": "Explain why it is prime, step by step, for a ten-year-old reader."},
        {
            "role": "assistant",
            "content": "Seven can only be divided evenly by one and by itself, so it has exactly two divisors.",
        },
    ]
    rows += [
        ("refusal", json.dumps(refusal), "hr"),
        ("short", json.dumps(short), "hs"),
        ("two_turn", json.dumps(two_turn), "ht"),
    ]
    return pl.DataFrame(rows, schema=["prompt_id", "messages_json", "request_hash"], orient="row").with_columns(
        pl.when(pl.col("prompt_id") == "short").then(pl.lit("144")).otherwise(None).alias("reference")
    )


def test_conversations_carry_the_rubric_the_context_and_the_answer_to_rate():
    rows = _answered_rows()
    conversations = judge_conversations(
        rows.vstack(
            pl.DataFrame(
                {
                    "prompt_id": ["unanswered"],
                    "messages_json": ['[{"role": "user", "content": "hi"}]'],
                    "request_hash": ["x"],
                    "reference": [None],
                }
            )
        )
    )
    assert [c.prompt_id for c in conversations] == rows["prompt_id"].to_list()
    assert all(c.system == JUDGE_RUBRIC and len(c.turns) == 1 for c in conversations)
    two_turn = next(c for c in conversations if c.prompt_id == "two_turn").turns[0]
    assert "Name a prime number." in two_turn and two_turn.rstrip().endswith("so it has exactly two divisors.")
    assert two_turn.index("Seven is a prime number.") < two_turn.index("[ANSWER TO RATE]")
    short = next(c for c in conversations if c.prompt_id == "short").turns[0]
    assert "[REFERENCE ANSWER]\n\n144" in short


def test_judgments_through_the_simulator_are_paid_once_and_parse(tmp_path):
    rows = _answered_rows()
    teacher = TeacherSettings(model=MODEL, max_concurrency=4)
    settings = judge_generation_settings(JudgeSettings(), teacher)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator([MODEL]) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        first = generate(judge_conversations(rows), settings, endpoint, ledger)
        paid = sim.stats()["completions"]
        second = generate(judge_conversations(rows), settings, endpoint, ledger)
        assert sim.stats()["completions"] == paid == rows.height
    assert first.stats.requests_paid == rows.height and second.stats.requests_paid == 0
    assert second.stats.cache_hits == rows.height
    assert first.generations["response"].to_list() == second.generations["response"].to_list()
    stored = ledger.get(first.generations["request_hash"][0])
    assert json.loads(stored.sampling_json)["temperature"] == 0.0

    scores = judge_scores_frame(MODEL, rows, second.generations)
    assert scores["error"].null_count() == rows.height, scores.filter(pl.col("error").is_not_null())
    assert scores["judge_score"].is_between(1, 10).all()
    assert scores["rationale"].drop_nulls().len() == rows.height
    assert scores["answer_request_hash"].to_list() == rows["request_hash"].to_list()
    assert scores["simulated"].all() and set(scores["judge_model"]) == {MODEL}
    by_prompt = dict(zip(scores["prompt_id"], scores["judge_score"], strict=True))
    assert by_prompt["refusal"] <= 2 and by_prompt["short"] <= 3
    assert min(by_prompt[f"p{i}"] for i in range(5)) >= 5
    assert sum(score_histogram(scores).values()) == rows.height


def test_a_best_of_n_teacher_gets_one_judgment_per_answer(tmp_path):
    # The judge inherits the teacher's settings: with TEACHER_SAMPLES_PER_PROMPT=4 it drew four
    # judgments (four seeds) per answer, paid four times, four judge_scores rows for one answer.
    rows = _answered_rows()
    teacher = TeacherSettings(model=MODEL, max_concurrency=4, samples_per_prompt=4, max_answers_per_prompt=2)
    settings = judge_generation_settings(JudgeSettings(), teacher)
    assert (settings.samples_per_prompt, settings.max_answers_per_prompt) == (1, 1)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator([MODEL]) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(judge_conversations(rows), settings, endpoint, ledger)
        assert sim.stats()["completions"] == rows.height
    assert result.stats.requests_paid == rows.height
    assert result.generations["prompt_id"].to_list() == rows["prompt_id"].to_list()
    scores = judge_scores_frame(MODEL, rows, result.generations)
    assert scores["answer_request_hash"].to_list() == rows["request_hash"].to_list()
    ledger.close()


def test_failed_judge_call_becomes_an_error_row():
    judgments = pl.DataFrame(
        {
            "teacher_model": [MODEL, MODEL],
            "prompt_id": ["a", "b"],
            "status": ["failed", "ok"],
            "response": [None, "I would say 8 out of 10."],
            "request_hash": ["ja", "jb"],
            "error": ["HTTP 503 (after 7 attempts)", None],
            "simulated": [True, True],
        }
    )
    answers = pl.DataFrame({"prompt_id": ["a", "b"], "request_hash": ["ha", "hb"]})
    scores = judge_scores_frame(MODEL, answers, judgments)
    assert scores["judge_score"].to_list() == [None, None]
    assert scores["error"][0] == "HTTP 503 (after 7 attempts)"
    assert "no JSON object with a score" in scores["error"][1]


# ----- training examples -----


def _example_inputs():
    generations = pl.DataFrame(
        {
            "teacher_model": [MODEL] * 4,
            "prompt_id": ["a", "b", "c", "d"],
            "messages_json": [
                f'[{{"role":"user","content":"q{i}"}},{{"role":"assistant","content":"a{i}"}}]' for i in range(4)
            ],
            "request_hash": ["ha", "hb", "hc", "hd"],
            "generated_at": [None] * 4,
            "cluster_id": ["ca", "cb", "cc", "cd"],
            "simulated": [True] * 4,
        }
    )
    scores = pl.DataFrame({"prompt_id": ["a", "b", "c", "d"], "score": [0.9, 0.8, 0.7, 0.6], "passed": [True] * 4})
    prompts = pl.DataFrame(
        {
            "prompt_id": ["a", "b", "c", "d"],
            "source_file": ["f.jsonl"] * 4,
            "source_line": [1, 2, 3, 4],
            "source_sha256": ["s"] * 4,
            "license": ["mit"] * 4,
        }
    )
    judgments = pl.DataFrame(
        {
            "teacher_model": [MODEL] * 3,
            "prompt_id": ["a", "b", "c"],
            "judge_score": [10.0, 2.0, 6.0],
            # c's judgment is of an older answer: it must not count.
            "answer_request_hash": ["ha", "hb", "old"],
        }
    )
    return generations, scores, prompts, judgments


def test_examples_blend_judgments_of_the_same_answer_and_drop_low_ones():
    generations, scores, prompts, judgments = _example_inputs()
    plain = build_training_examples(generations, scores, prompts, validation_fraction=0.0)
    assert dict(zip(plain["prompt_id"], plain["quality_score"], strict=True)) == {
        "a": 0.9,
        "b": 0.8,
        "c": 0.7,
        "d": 0.6,
    }

    judged = build_training_examples(
        generations, scores, prompts, validation_fraction=0.0, judgments=judgments, judge_weight=0.4
    )
    got = dict(zip(judged["prompt_id"], judged["quality_score"], strict=True))
    assert got["a"] == pytest.approx(combine_scores(0.9, 10.0, 0.4))
    assert got["b"] == pytest.approx(combine_scores(0.8, 2.0, 0.4))
    assert got["c"] == 0.7 and got["d"] == 0.6
    assert judged.columns == plain.columns

    filtered = build_training_examples(
        generations, scores, prompts, validation_fraction=0.0, judgments=judgments, judge_weight=0.4, judge_min_score=5
    )
    assert sorted(filtered["prompt_id"]) == ["a", "c", "d"]
    empty = build_training_examples(
        generations, scores, prompts, validation_fraction=0.0, judgments=pl.DataFrame(), judge_min_score=5
    )
    assert empty.equals(plain)
