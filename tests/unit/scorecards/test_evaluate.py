"""Scorecards against the real simulator over HTTP: two releases of different accuracy, the ledger, IFEval.

Protects: a simulated release of accuracy 0.9 and one of 0.55 are each measured within the 95%
interval; a repeated evaluation pays nothing (the simulator serves no new completion); IFEval
scores are the paper's strict/loose, prompt/instruction accuracies with accuracy = prompt strict.
"""

from __future__ import annotations

import pytest

from distillset.scorecards.evaluate import eval_settings, evaluate_benchmark
from distillset.scorecards.interval import wilson_interval
from distillset.scorecards.sets import answer_key, load_questions
from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.ledger import Ledger

STRONG, WEAK = "meta-llama/Llama-5-Strong-Instruct", "meta-llama/Llama-5-Weak-Instruct"
ACCURACY = {STRONG: 0.9, WEAK: 0.55}


@pytest.fixture(scope="module")
def gsm8k():
    return load_questions("gsm8k", 200)


@pytest.fixture
def simulator(gsm8k):
    with TeacherSimulator([STRONG, WEAK], model_accuracy=ACCURACY, answer_key=answer_key(gsm8k)) as running:
        yield running


def _endpoint(simulator) -> TeacherEndpoint:
    return TeacherEndpoint(base_url=simulator.base_url, api_key=None, simulated=False)


@pytest.mark.parametrize("model", [STRONG, WEAK])
def test_each_release_is_measured_within_its_interval_and_a_repeat_pays_nothing(model, simulator, gsm8k, tmp_path):
    settings = eval_settings(TeacherSettings(base_url=simulator.base_url), model)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    score = evaluate_benchmark("gsm8k", gsm8k, settings, _endpoint(simulator), ledger)
    assert score.n == 200 and score.model == model and score.requests_paid == 200
    assert score.ci_low <= ACCURACY[model] <= score.ci_high, score
    assert (score.ci_low, score.ci_high) == wilson_interval(score.correct, 200)
    paid = simulator.stats()["completions"]

    again = evaluate_benchmark("gsm8k", gsm8k, settings, _endpoint(simulator), ledger)
    assert again.requests_paid == 0 and again.cache_hits == 200
    assert simulator.stats()["completions"] == paid
    assert again.accuracy == score.accuracy
    ledger.close()


def test_a_best_of_n_teacher_is_scored_on_one_answer_per_question(simulator, gsm8k, tmp_path):
    # TEACHER_SAMPLES_PER_PROMPT=4 made the scorecard draw 4 answers per question, and the run
    # failed scoring "800 answers but 200 tasks".
    teacher = TeacherSettings(base_url=simulator.base_url, samples_per_prompt=4, max_answers_per_prompt=2)
    settings = eval_settings(teacher, STRONG)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    score = evaluate_benchmark("gsm8k", gsm8k, settings, _endpoint(simulator), ledger)
    assert score.n == 200 and score.requests_paid == 200
    assert simulator.stats()["completions"] == 200
    ledger.close()


def test_evaluations_run_at_temperature_zero_and_without_the_teachers_system_prompt():
    teacher = TeacherSettings(sampling=TeacherSettings().sampling.__class__(temperature=0.7, system_prompt="Be terse."))
    settings = eval_settings(teacher, STRONG)
    assert settings.sampling_params()["temperature"] == 0.0
    assert settings.sampling.system_prompt is None and settings.model == STRONG


def test_ifeval_reports_strict_and_loose_at_prompt_and_instruction_level(simulator, tmp_path):
    questions = load_questions("ifeval", 30)
    settings = eval_settings(TeacherSettings(base_url=simulator.base_url), STRONG)
    score = evaluate_benchmark("ifeval", questions, settings, _endpoint(simulator), Ledger(tmp_path / "l.sqlite"))
    assert set(score.metrics) == {"prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"}
    assert score.accuracy == pytest.approx(score.metrics["prompt_strict"], abs=1e-5)
    assert score.metrics["prompt_loose"] >= score.metrics["prompt_strict"]
    assert score.metrics["instruction_loose"] >= score.metrics["instruction_strict"]
