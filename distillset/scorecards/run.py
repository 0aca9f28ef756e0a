"""One evaluation end to end: the questions, the endpoint (or the simulator), the ledger, the store.

What ``distillset evaluate`` and the ``teacher_scorecard`` asset share. The endpoint factory is
passed in (``distillset.simulator.endpoint.open_endpoint`` at the edges), so this module never
imports the simulator; when the simulator serves, it is handed the benchmark's reference answers
(a real endpoint never is), as the teacher stage hands it the pool's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from distillset.scorecards.evaluate import BenchmarkScore, eval_settings, evaluate_benchmark
from distillset.scorecards.sets import answer_key, load_questions
from distillset.settings import TeacherSettings
from distillset.teacher.accounting import GenerationProgress
from distillset.teacher.ledger import Ledger


def evaluate_model(
    model: str,
    benchmarks: Sequence[str],
    teacher: TeacherSettings,
    ledger: Ledger,
    open_endpoint: Callable,
    *,
    limit: int | None = None,
    temperature: float = 0.0,
    run_id: str | None = None,
    on_progress: Callable[[str, GenerationProgress], None] | None = None,
    progress_interval_s: float = 5.0,
) -> list[BenchmarkScore]:
    """Evaluate ``model`` on each benchmark (the first ``limit`` questions of each), in order.

    Args:
        model: the model id asked.
        benchmarks: ``gsm8k`` and/or ``ifeval``.
        teacher: where to ask and how (its ``base_url``/``api_key``; sampling gets temperature 0).
        ledger: every answer is looked up there first and recorded there.
        open_endpoint: ``(settings, answer_key=...) -> context manager of TeacherEndpoint``.
        limit: questions per benchmark, first in file order (None: all).
        temperature: sampling temperature (0 by default).
        run_id: recorded with every answer.
        on_progress: ``(benchmark, progress)`` every ``progress_interval_s`` seconds.
    """
    settings = eval_settings(teacher, model, temperature)
    scores = []
    for benchmark in benchmarks:
        questions = load_questions(benchmark, limit)
        report = (lambda p, b=benchmark: on_progress(b, p)) if on_progress is not None else None
        with open_endpoint(settings, answer_key=answer_key(questions)) as endpoint:
            scores.append(
                evaluate_benchmark(
                    benchmark,
                    questions,
                    settings,
                    endpoint,
                    ledger,
                    run_id=run_id,
                    on_progress=report,
                    progress_interval_s=progress_interval_s,
                )
            )
    return scores
