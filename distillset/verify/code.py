"""Checking a code answer by running it with the task's tests in the sandbox.

**The code** (``extract_code``): the fenced blocks tagged ``python``/``py``/``python3`` (else
untagged fences); of those, the first that defines a function the tests call (the HumanEval
``entry_point``, or a name the MBPP asserts call), else the first one. An unclosed fence (a
truncated answer) runs to the end. With no fence, the whole answer if it parses as Python.
Nothing found is ``no_code_block``; code that does not compile is ``syntax_error``.

**The program**, run as one file by ``sandbox.run_python``:

* MBPP: ``test_setup_code``, the code, then each assert of ``test_list`` (and
  ``challenge_test_list``) on its own lines;
* HumanEval: the task ``prompt`` (signature, docstring and any helpers it defines), then the
  code, then ``test`` and ``check(entry_point)``. When the code lacks ``def entry_point`` it is
  the body: appended under the prompt's signature, indented if the answer was not. When it has
  the ``def``, it comes after the prompt and replaces the prompt's stub, keeping the prompt's
  imports and helpers.

**Verdicts**: exit 0 is ``correct``; the wall-time limit or the CPU limit is ``timeout``; a
``MemoryError`` is ``memory_limit``; ``File too large`` or a full tmpfs is ``file_size_limit``;
any other failure is ``tests_failed``, with a detail naming the test line that failed (the
innermost frame inside the tests, else the first frame of the program) and the exception, e.g.
``assert add(1, 2) == 3 -> AssertionError``. A sandbox that cannot start is ``sandbox_error``
(``unverifiable``).
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from dataclasses import dataclass

from distillset.verify.sandbox import DEFAULT_LIMITS, SandboxLimits, SandboxResult, run_python
from distillset.verify.task import VerifiableTask
from distillset.verify.verdict import CORRECT, UNVERIFIABLE, WRONG, Verdict

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
_FRAME = re.compile(r'^\s*File "main\.py", line (\d+)', re.MULTILINE)
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Program:
    """A program to run and where its tests are, to name the line a failure comes from.

    Attributes:
        source: the whole program.
        test_lines: 1-based line numbers of ``source`` that belong to the tests.
    """

    source: str
    test_lines: frozenset[int]


def _fenced_blocks(answer: str) -> list[str]:
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(answer)]
    tagged = [body for tag, body in blocks if tag in _PYTHON_TAGS]
    return tagged or [body for tag, body in blocks if not tag]


def _defines(code: str, names: set[str]) -> bool:
    return any(re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) for name in names)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def called_names(tests: tuple[str, ...]) -> set[str]:
    """Names of the functions the MBPP asserts call, builtins excluded (``min_cost`` for
    ``assert min_cost([[1]], 0, 0) == 1``)."""
    names: set[str] = set()
    for test in tests:
        try:
            tree = ast.parse(test)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in _BUILTINS:
                names.add(node.func.id)
    return names


def extract_code(answer: str, wanted: set[str] | None = None) -> str | None:
    """The Python code of an answer (rules in the module docstring), or None.

    Args:
        answer: the whole response.
        wanted: function names the tests call; a block defining one of them is preferred.
    """
    blocks = [block for block in _fenced_blocks(answer) if block.strip()]
    if blocks:
        for block in blocks:
            if wanted and _defines(block, wanted):
                return block
        return blocks[0]
    stripped = answer.strip()
    return stripped if stripped and _parses(stripped) else None


def _join(parts: list[tuple[str, bool]]) -> Program:
    lines: list[str] = []
    tests: set[int] = set()
    for text, is_test in parts:
        chunk = text.replace("\r\n", "\n").rstrip("\n").split("\n")
        if is_test:
            tests.update(range(len(lines) + 1, len(lines) + len(chunk) + 1))
        lines.extend(chunk)
        lines.append("")
    return Program("\n".join(lines) + "\n", frozenset(tests))


def _humaneval_code(code: str, task: VerifiableTask) -> str:
    prompt = task.code_prompt or ""
    if _defines(code, {task.entry_point or ""}) or not prompt:
        return f"{prompt}\n{code}" if prompt else code
    body = code if code[:1] in (" ", "\t") or not code.strip() else textwrap.indent(code, "    ")
    joined = prompt.rstrip("\n") + "\n" + body
    if _parses(joined):
        return joined
    # An indented first line with a dedented rest, or the reverse: try the body dedented and re-indented.
    return prompt.rstrip("\n") + "\n" + textwrap.indent(textwrap.dedent(code), "    ")


def build_program(code: str, task: VerifiableTask) -> Program:
    """The file the sandbox runs: the code with the task's tests (layout in the module docstring)."""
    if task.test_code:
        return _join(
            [(_humaneval_code(code, task), False), (task.test_code, True), (f"check({task.entry_point})", True)]
        )
    return _join([(task.test_setup, False), (code, False), *((test, True) for test in task.tests)])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _failure_detail(program: Program, result: SandboxResult) -> str:
    source_lines = program.source.split("\n")
    frames = [int(number) for number in _FRAME.findall(result.stderr)]
    in_tests = [number for number in frames if number in program.test_lines]
    line = in_tests[-1] if in_tests else (frames[0] if frames else None)
    error = _last_line(result.stderr) or f"exit code {result.returncode}"
    if line is not None and 0 < line <= len(source_lines):
        return f"{source_lines[line - 1].strip()} -> {error}"
    return error


def _code_verdict(status: str, reason: str, detail: str | None, extracted: str | None = None) -> Verdict:
    return Verdict(status, reason, "code", extracted=extracted, detail=detail)


def verdict_from_result(program: Program, result: SandboxResult) -> Verdict:
    """Map a sandbox run of ``program`` to a verdict (rules in the module docstring)."""
    seconds = f"{result.duration_s:.1f} s"
    if result.timed_out or result.cpu_limited:
        return _code_verdict(WRONG, "timeout", f"killed after {seconds} (time limit)")
    if result.returncode == 0:
        return _code_verdict(CORRECT, "correct", f"all tests passed in {seconds}")
    tail = result.stderr[-2000:]
    if re.search(r"^MemoryError\b", tail, re.MULTILINE):
        return _code_verdict(WRONG, "memory_limit", _failure_detail(program, result))
    if "[Errno 27] File too large" in tail or "[Errno 28] No space left on device" in tail:
        return _code_verdict(WRONG, "file_size_limit", _failure_detail(program, result))
    return _code_verdict(WRONG, "tests_failed", _failure_detail(program, result))


def _syntax_problem(source: str) -> str | None:
    try:
        compile(source, "main.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}" if exc.lineno else exc.msg
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"does not compile ({type(exc).__name__})"
    return None


def verify_code(answer: str, task: VerifiableTask, limits: SandboxLimits = DEFAULT_LIMITS) -> Verdict:
    """Run the answer's code with the task's tests in the sandbox.

    Args:
        answer: the whole response (fenced code, or plain Python).
        task: a ``code`` task (MBPP asserts or HumanEval test code).
        limits: sandbox limits (time, memory, files, processes).

    Returns:
        ``correct``; ``wrong`` with ``no_code_block``, ``syntax_error``, ``tests_failed``,
        ``timeout``, ``memory_limit`` or ``file_size_limit``; ``unverifiable`` with
        ``sandbox_error`` when the sandbox could not run at all.
    """
    if task.kind != "code":
        raise ValueError(f"verify_code needs a code task, not {task.kind!r}")
    wanted = {task.entry_point} if task.entry_point else called_names(task.tests)
    code = extract_code(answer, wanted)
    if code is None:
        return _code_verdict(WRONG, "no_code_block", "no Python code found in the answer")
    # A HumanEval body ("    return x") only parses under the prompt's signature: check the program.
    problem = _syntax_problem(code) if not task.test_code else None
    program = build_program(code, task)
    problem = problem or _syntax_problem(program.source)
    if problem:
        return _code_verdict(WRONG, "syntax_error", problem)
    try:
        result = run_python(program.source, limits)
    except OSError as exc:
        return _code_verdict(UNVERIFIABLE, "sandbox_error", f"the sandbox could not start: {exc}")
    return verdict_from_result(program, result)
