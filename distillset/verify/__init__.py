"""Deterministic verifiers: is an answer right, by a check that needs no model?

One contract for all (``verdict.Verdict``: status, stable reason code, verifier, expected,
extracted, detail) and one entry point, ``verify(answer, task)``, with ``task`` read from what a
prompt row carries (``task_from_metadata``). The verifiers:

* ``math``: the final answer against a reference, by math-verify equivalence (``math.py``);
* ``code``: the answer's Python run with the task's tests in an isolated subprocess (``code.py``,
  ``sandbox.py``; what the sandbox guarantees, as root and not, is in ``sandbox.py``);
* ``ifeval``: IFEval's verifiable instructions, strict and loose (``ifeval.py``);
* ``self_consistency``: agreement with the majority of N samples, for prompts without a
  reference (``consistency.py``).

Plain Python: nothing here imports dagster or reads environment variables; every knob is an argument.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Imported on first use: the math verifier pulls in sympy (seconds of start-up), which a caller
# that only runs code or IFEval checks should not pay for.
_EXPORTS = {
    "Majority": "consistency",
    "SandboxLimits": "sandbox",
    "SandboxResult": "sandbox",
    "UnsupportedInstruction": "ifeval",
    "Verdict": "verdict",
    "VerifiableTask": "task",
    "answers_equivalent": "math",
    "check_instructions": "ifeval",
    "extract_code": "code",
    "extract_final_answer": "extract",
    "ifeval_scores": "ifeval",
    "majority_answer": "consistency",
    "normalize_answer": "extract",
    "reference_answer": "extract",
    "run_python": "sandbox",
    "self_consistency_verdicts": "consistency",
    "task_from_metadata": "task",
    "verify": "engine",
    "verify_code": "code",
    "verify_ifeval": "ifeval",
    "verify_many": "engine",
    "verify_math": "math",
}
__all__ = [
    "Majority",
    "SandboxLimits",
    "SandboxResult",
    "UnsupportedInstruction",
    "Verdict",
    "VerifiableTask",
    "answers_equivalent",
    "check_instructions",
    "extract_code",
    "extract_final_answer",
    "ifeval_scores",
    "majority_answer",
    "normalize_answer",
    "reference_answer",
    "run_python",
    "self_consistency_verdicts",
    "task_from_metadata",
    "verify",
    "verify_code",
    "verify_ifeval",
    "verify_many",
    "verify_math",
]

if TYPE_CHECKING:
    from distillset.verify.code import extract_code, verify_code
    from distillset.verify.consistency import Majority, majority_answer, self_consistency_verdicts
    from distillset.verify.engine import verify, verify_many
    from distillset.verify.extract import extract_final_answer, normalize_answer, reference_answer
    from distillset.verify.ifeval import UnsupportedInstruction, check_instructions, ifeval_scores, verify_ifeval
    from distillset.verify.math import answers_equivalent, verify_math
    from distillset.verify.sandbox import SandboxLimits, SandboxResult, run_python
    from distillset.verify.task import VerifiableTask, task_from_metadata
    from distillset.verify.verdict import Verdict


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
