"""The held-out evaluation sets: the shipped GSM8K test and IFEval files decontamination protects.

The files are found through ``distillset.curation.decontam.default_benchmarks`` (the registry
``data/benchmarks/benchmarks.json``), not by a path of their own: the questions a scorecard asks
are, by construction, the ones every training set is decontaminated against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from distillset.verify.extract import reference_answer
from distillset.verify.task import VerifiableTask

# Scorecard benchmark name -> the decontamination registry's name for the same file.
BENCHMARKS = {"gsm8k": "gsm8k_test", "ifeval": "ifeval"}
ALL = "all"


@dataclass(frozen=True)
class EvalQuestion:
    """One held-out question: its id (benchmark and 1-based line), the prompt and how to verify it."""

    question_id: str
    prompt: str
    task: VerifiableTask
    reference: str | None = None
    """The final answer (GSM8K), for the simulator's answer key only; never sent to an endpoint."""


def benchmark_path(name: str) -> Path:
    """The file of scorecard benchmark ``name`` (``gsm8k`` or ``ifeval``): the decontamination set's file."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r} (choose from {', '.join(BENCHMARKS)})")
    registry_name = BENCHMARKS[name]
    # Here, not at the top: settings validation imports this module, and decontam imports polars.
    from distillset.curation.decontam import default_benchmarks

    for benchmark in default_benchmarks():
        if benchmark.name == registry_name:
            return benchmark.path
    raise ValueError(f"the benchmark registry lists no {registry_name!r}")


def benchmark_names(choice: str) -> list[str]:
    """``all`` -> every benchmark, else the one named (checked)."""
    if choice == ALL:
        return list(BENCHMARKS)
    benchmark_path(choice)
    return [choice]


def load_questions(name: str, limit: int | None = None) -> list[EvalQuestion]:
    """The questions of benchmark ``name``, in file order; the first ``limit`` when given."""
    path = benchmark_path(name)
    questions: list[EvalQuestion] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if limit is not None and len(questions) >= limit:
                break
            if not line.strip():
                continue
            questions.append(_question(name, line_number, json.loads(line)))
    return questions


def _question(name: str, line_number: int, record: dict) -> EvalQuestion:
    question_id = f"{name}:{line_number}"
    if name == "gsm8k":
        answer = reference_answer(record["answer"])
        return EvalQuestion(question_id, record["question"], VerifiableTask.math(record["answer"]), answer)
    task = VerifiableTask.ifeval(record["instruction_id_list"], record.get("kwargs") or ())
    return EvalQuestion(question_id, record["prompt"], task)


def answer_key(questions: list[EvalQuestion]) -> dict[str, str]:
    """Question -> final answer, for the simulator only (a real endpoint is never sent references)."""
    return {q.prompt: q.reference for q in questions if q.reference}
