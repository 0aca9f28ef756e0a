"""Ask a model the held-out questions, verify its answers, and score each benchmark.

Every call goes through ``distillset.teacher.generate`` and so through the ledger: a repeated
evaluation (same model, questions and sampling) pays nothing. Sampling is the teacher's with
temperature 0 (``eval_settings``), so an evaluation measures the model, not a lucky draw.

**Accuracy.** GSM8K: the share of answers whose final answer math-verify finds equivalent to the
reference. IFEval: the prompt-level strict accuracy (every instruction followed, response as is);
the loose and instruction-level accuracies of the IFEval paper are in ``metrics``. A question the
endpoint failed to answer counts as wrong (``failed`` says how many).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from distillset.scorecards.interval import wilson_interval
from distillset.scorecards.sets import EvalQuestion
from distillset.settings import TeacherSettings
from distillset.teacher.accounting import GenerationProgress
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation
from distillset.verify.engine import verify_many
from distillset.verify.ifeval import ifeval_scores


@dataclass(frozen=True)
class BenchmarkScore:
    """One model on one benchmark.

    Attributes:
        model: the model id asked.
        benchmark: ``gsm8k`` or ``ifeval``.
        n: questions asked.
        correct: questions answered right (IFEval: every instruction followed, strict).
        accuracy: ``correct / n``.
        ci_low, ci_high: the 95% Wilson interval of ``accuracy``.
        metrics: further accuracies (IFEval: ``prompt_strict``, ``prompt_loose``,
            ``instruction_strict``, ``instruction_loose``).
        failed: questions the endpoint did not answer (counted wrong).
        requests_paid, cache_hits: calls paid now, and answers reused from the ledger.
        simulated: the answers came from the embedded simulator.
    """

    model: str
    benchmark: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    metrics: dict = field(default_factory=dict)
    failed: int = 0
    requests_paid: int = 0
    cache_hits: int = 0
    simulated: bool = False

    def as_dict(self) -> dict:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)


def eval_settings(settings: TeacherSettings, model: str, temperature: float = 0.0) -> TeacherSettings:
    """``settings`` for evaluating ``model``: temperature 0 by default, no budget cut mid-set, one
    answer per question (a best-of-N teacher's samples would be N answers to score against one task)."""
    sampling = dataclasses.replace(settings.sampling, temperature=temperature, system_prompt=None)
    return settings.with_overrides(
        model=model,
        sampling=sampling,
        budget_tokens=None,
        budget_usd=None,
        samples_per_prompt=1,
        max_answers_per_prompt=1,
        pass_rate_min=None,
        pass_rate_max=None,
    )


def evaluate_benchmark(
    benchmark: str,
    questions: Sequence[EvalQuestion],
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    on_progress: Callable[[GenerationProgress], None] | None = None,
    progress_interval_s: float = 5.0,
) -> BenchmarkScore:
    """Ask ``settings.model`` every question of one benchmark and score the answers.

    Args:
        benchmark: the benchmark's name (``gsm8k`` or ``ifeval``).
        questions: from ``distillset.scorecards.sets.load_questions``.
        settings: from ``eval_settings`` (the model and temperature 0).
        endpoint: where the questions go.
        ledger: every answer is looked up there first and recorded there.
        run_id, on_progress, progress_interval_s: as ``generate``.
    """
    conversations = [Conversation(prompt_id=q.question_id, system=None, turns=[q.prompt]) for q in questions]
    result = generate(
        conversations,
        settings,
        endpoint,
        ledger,
        run_id=run_id,
        on_progress=on_progress,
        progress_interval_s=progress_interval_s,
    )
    rows = result.generations
    answers = [(r if s == "ok" else "") or "" for r, s in zip(rows["response"], rows["status"], strict=True)]
    failed = sum(1 for s in rows["status"] if s != "ok")
    metrics: dict = {}
    if benchmark == "ifeval":
        tasks = [q.task for q in questions]
        metrics = ifeval_scores(
            answers, [t.instruction_ids for t in tasks], [list(t.instruction_kwargs) for t in tasks]
        )
        correct = round(metrics["prompt_strict"] * len(questions))
    else:
        verdicts = verify_many(answers, [q.task for q in questions])
        correct = sum(1 for v in verdicts if v.passed)
    n = len(questions)
    low, high = wilson_interval(correct, n)
    return BenchmarkScore(
        model=settings.model,
        benchmark=benchmark,
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        metrics={k: round(v, 6) for k, v in metrics.items()},
        failed=failed,
        requests_paid=result.stats.requests_paid,
        cache_hits=result.stats.cache_hits,
        simulated=endpoint.simulated,
    )
