"""One entry point for every verifier: ``verify(answer, task)`` and its batch form ``verify_many``.

The task's ``kind`` picks the verifier (``math``, ``code``, ``ifeval``); no task is
``unverifiable``/``no_verifier``. ``verify_many`` runs code tasks on a small thread pool, since
each waits on its own sandbox subprocess, and the others in the calling thread (they are pure
Python, so threads would only contend for the GIL). Both are safe to call from any thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from distillset.verify.code import verify_code
from distillset.verify.extract import MAX_ANSWER_CHARS
from distillset.verify.ifeval import verify_ifeval
from distillset.verify.sandbox import DEFAULT_LIMITS, SandboxLimits
from distillset.verify.task import VerifiableTask
from distillset.verify.verdict import Verdict, no_verifier

DEFAULT_CODE_WORKERS = max(1, min(4, os.cpu_count() or 1))


def verify(
    answer: str,
    task: VerifiableTask | None,
    *,
    code_limits: SandboxLimits = DEFAULT_LIMITS,
    max_answer_chars: int = MAX_ANSWER_CHARS,
) -> Verdict:
    """Verify one answer against what its prompt carries.

    Args:
        answer: the model's whole response.
        task: the prompt's task (``task_from_metadata``), or None when it carries nothing verifiable.
        code_limits: sandbox limits for code tasks.
        max_answer_chars: longest math final answer compared.

    Returns:
        The verifier's verdict; ``unverifiable``/``no_verifier`` for no task.
    """
    if task is None:
        return no_verifier()
    if task.kind == "math":
        # Imported here: sympy costs seconds of start-up that code and IFEval callers need not pay.
        from distillset.verify.math import verify_math

        return verify_math(answer, task.reference or "", max_answer_chars=max_answer_chars)
    if task.kind == "code":
        return verify_code(answer, task, code_limits)
    return verify_ifeval(answer, task)


def verify_many(
    answers: Sequence[str],
    tasks: Sequence[VerifiableTask | None],
    *,
    code_limits: SandboxLimits = DEFAULT_LIMITS,
    max_workers: int = DEFAULT_CODE_WORKERS,
    max_answer_chars: int = MAX_ANSWER_CHARS,
) -> list[Verdict]:
    """Verify many answers; ``verdicts[i]`` is ``verify(answers[i], tasks[i])``.

    For best-of-N, pass the prompt's task N times (``[task] * len(samples)``).

    Args:
        answers: the responses.
        tasks: one task (or None) per response.
        code_limits: sandbox limits for code tasks.
        max_workers: sandboxes run at once (each is one process tree within ``code_limits``).
        max_answer_chars: longest math final answer compared.

    Raises:
        ValueError: ``answers`` and ``tasks`` differ in length, or ``max_workers`` < 1.
    """
    if len(answers) != len(tasks):
        raise ValueError(f"{len(answers)} answers but {len(tasks)} tasks")
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    verdicts: list[Verdict | None] = [None] * len(answers)
    code = [i for i, task in enumerate(tasks) if task is not None and task.kind == "code"]
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="distillset-sandbox") as pool:
        futures = {i: pool.submit(verify_code, answers[i], tasks[i], code_limits) for i in code}
        for i, (answer, task) in enumerate(zip(answers, tasks, strict=True)):
            if i not in futures:
                verdicts[i] = verify(answer, task, code_limits=code_limits, max_answer_chars=max_answer_chars)
        for i, future in futures.items():
            verdicts[i] = future.result()
    return verdicts  # type: ignore[return-value]
