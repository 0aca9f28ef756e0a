"""What a prompt carries that makes its answers checkable, and how to read it from a prompt row.

A ``VerifiableTask`` names one verifier (``kind``) and holds what that verifier needs:

| kind | fields | from metadata keys (as in the source datasets) |
|---|---|---|
| ``math`` | ``reference`` | none: the row's ``reference`` (GSM8K ``#### 72``, a worked solution, ``72``, LaTeX) |
| ``code`` (MBPP) | ``tests``, ``test_setup`` | ``test_list``, ``challenge_test_list``, ``test_setup_code`` |
| ``code`` (HumanEval) | ``test_code``, ``entry_point``, ``code_prompt`` | ``test``, ``entry_point``, ``prompt`` |
| ``ifeval`` | ``instruction_ids``, ``instruction_kwargs`` | ``instruction_id_list``, ``kwargs`` |

``task_from_metadata`` picks the first that applies, in the order code, ifeval, math: tests and
instructions are explicit, while a ``reference`` is used only when it holds a short final answer
(a free-text reference such as MT-Bench's explanations is not a math answer, and gives no task).
MBPP's ``challenge_test_list`` asserts are run with ``test_list`` (stricter than MBPP's own
evaluation, which runs ``test_list`` only); ``include_challenge_tests=False`` drops them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distillset.verify.extract import reference_answer

KINDS = ("math", "code", "ifeval")


@dataclass(frozen=True)
class VerifiableTask:
    """One prompt's verification target. Build it with the class methods or ``task_from_metadata``.

    Attributes:
        kind: ``math``, ``code`` or ``ifeval``.
        reference: math: the reference answer as the source gives it.
        tests: code (MBPP): assert statements, run one after the other.
        test_setup: code (MBPP): statements run before the answer (imports, fixtures).
        test_code: code (HumanEval): the test source that defines ``check(candidate)``.
        entry_point: code (HumanEval): the function name passed to ``check``.
        code_prompt: code (HumanEval): signature and docstring, prepended when the answer lacks
            the ``def``.
        instruction_ids: ifeval: instruction ids such as ``punctuation:no_comma``.
        instruction_kwargs: ifeval: one dict of arguments per instruction id.
    """

    kind: str
    reference: str | None = None
    tests: tuple[str, ...] = ()
    test_setup: str = ""
    test_code: str | None = None
    entry_point: str | None = None
    code_prompt: str | None = None
    instruction_ids: tuple[str, ...] = ()
    instruction_kwargs: tuple[Mapping[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "math" and not (self.reference or "").strip():
            raise ValueError("a math task needs a non-empty reference")
        if self.kind == "code" and not self.tests and not self.test_code:
            raise ValueError("a code task needs MBPP tests or HumanEval test code")
        if self.kind == "code" and self.test_code and not self.entry_point:
            raise ValueError("a HumanEval task needs its entry_point")
        if self.kind == "ifeval":
            if not self.instruction_ids:
                raise ValueError("an ifeval task needs at least one instruction id")
            if self.instruction_kwargs and len(self.instruction_kwargs) != len(self.instruction_ids):
                raise ValueError("ifeval: one kwargs dict per instruction id")

    @classmethod
    def math(cls, reference: str) -> VerifiableTask:
        """A task checked by final-answer equivalence with ``reference``."""
        return cls("math", reference=reference)

    @classmethod
    def mbpp(cls, tests: Sequence[str], setup: str = "") -> VerifiableTask:
        """An MBPP-style task: ``setup``, then the answer, then each assert of ``tests``."""
        return cls("code", tests=tuple(tests), test_setup=setup or "")

    @classmethod
    def humaneval(cls, test_code: str, entry_point: str, prompt: str | None = None) -> VerifiableTask:
        """A HumanEval-style task: the answer, then ``test_code``, then ``check(entry_point)``."""
        return cls("code", test_code=test_code, entry_point=entry_point, code_prompt=prompt)

    @classmethod
    def ifeval(cls, instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any] | None] = ()) -> VerifiableTask:
        """An instruction-following task; ``kwargs`` defaults to no arguments for every id."""
        ids = tuple(instruction_ids)
        arguments = tuple(_clean_kwargs(k) for k in kwargs) if kwargs else tuple({} for _ in ids)
        return cls("ifeval", instruction_ids=ids, instruction_kwargs=arguments)


def _clean_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    # The Hugging Face copy of IFEval gives every kwargs dict every key, most of them null.
    return {key: value for key, value in (kwargs or {}).items() if value is not None}


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Sequence):
        return [item for item in value if isinstance(item, str) and item.strip()]
    return []


def task_from_metadata(
    reference: str | None,
    metadata: Mapping[str, Any] | None,
    *,
    include_challenge_tests: bool = True,
) -> VerifiableTask | None:
    """The verification task a prompt row carries, or None when it carries nothing verifiable.

    Args:
        reference: the row's reference answer (math), or None.
        metadata: the row's other source fields (MBPP, HumanEval, IFEval keys), or None.
        include_challenge_tests: run MBPP's ``challenge_test_list`` too.

    Returns:
        A code task when the metadata has MBPP or HumanEval tests, else an ifeval task when it
        has instruction ids, else a math task when ``reference`` holds a final answer, else None.
    """
    metadata = metadata or {}
    tests = _string_list(metadata.get("test_list"))
    if tests:
        if include_challenge_tests:
            tests += _string_list(metadata.get("challenge_test_list"))
        setup = metadata.get("test_setup_code")
        return VerifiableTask.mbpp(tests, setup if isinstance(setup, str) else "")
    test_code, entry_point = metadata.get("test"), metadata.get("entry_point")
    if isinstance(test_code, str) and test_code.strip() and isinstance(entry_point, str) and entry_point.strip():
        prompt = metadata.get("prompt")
        return VerifiableTask.humaneval(test_code, entry_point.strip(), prompt if isinstance(prompt, str) else None)
    ids = _string_list(metadata.get("instruction_id_list"))
    if ids:
        kwargs = metadata.get("kwargs")
        kwargs = kwargs if isinstance(kwargs, Sequence) and not isinstance(kwargs, str) else ()
        if kwargs and len(kwargs) != len(ids):
            return None
        return VerifiableTask.ifeval(ids, [k if isinstance(k, Mapping) else {} for k in kwargs])
    if reference is not None and reference_answer(reference) is not None:
        return VerifiableTask.math(reference)
    return None
