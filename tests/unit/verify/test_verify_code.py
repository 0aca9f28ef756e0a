"""Code verifier (distillset.verify.code): an answer's Python run with MBPP or HumanEval tests.

Protects: the code is taken from ```python fences (the block defining the tested function wins),
else untagged fences, else the whole answer when it parses; none is ``no_code_block``; the 40
shipped MBPP training-split tasks pass with their reference solutions and fail with another
task's; the detail names the first failing assert; timeouts, memory and file-size limits map to
their reasons; HumanEval answers given as a body, an unindented body or the full function all run
against ``check(entry_point)``; a syntax error is ``syntax_error`` without running anything;
rows read by ``task_from_metadata`` carry MBPP's and HumanEval's fields.
"""

from __future__ import annotations

import json

import pytest

from distillset.settings.paths import DATA_DIR
from distillset.verify import verify_many
from distillset.verify.code import build_program, called_names, extract_code, verify_code
from distillset.verify.sandbox import SandboxLimits
from distillset.verify.task import VerifiableTask, task_from_metadata

SAMPLE = DATA_DIR / "code_tasks" / "mbpp_train_sample.jsonl"
FAST = SandboxLimits(timeout_s=5)
ADD = VerifiableTask.mbpp(["assert add(1, 2) == 3", "assert add(-1, 1) == 0"])

# A HumanEval-shaped task written for these tests (the real HumanEval is a held-out benchmark).
HUMANEVAL = VerifiableTask.humaneval(
    test_code="def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n",
    entry_point="total",
    prompt='from typing import List\n\n\ndef total(numbers: List[int]) -> int:\n    """Sum of the numbers."""\n',
)


def _rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def test_the_shipped_sample_is_40_training_split_tasks_with_a_license():
    rows = _rows()
    assert len(rows) == 40
    assert all(row["task_id"] <= 10 or 511 <= row["task_id"] <= 974 for row in rows)
    license_line = (SAMPLE.parent / f"{SAMPLE.name}.license").read_text().splitlines()[0]
    assert license_line == "CC-BY-4.0"


def test_reference_solutions_pass_and_swapped_ones_fail():
    rows = _rows()
    tasks = [task_from_metadata(None, row) for row in rows]
    right = [f"Here is my solution:\n```python\n{row['code']}\n```\nIt works." for row in rows]
    wrong = [f"```python\n{rows[i + 1]['code']}\n```" for i in range(10)]
    verdicts = verify_many(right + wrong, tasks + tasks[:10], code_limits=SandboxLimits(timeout_s=10))
    assert [v.reason for v in verdicts[: len(rows)]] == ["correct"] * len(rows)
    assert [v.reason for v in verdicts[len(rows) :]] == ["tests_failed"] * 10


def test_a_wrong_solution_names_the_first_failing_assert():
    verdict = verify_code("```python\ndef add(a, b):\n    return a + b if a > 0 else 99\n```", ADD, FAST)
    assert (verdict.status, verdict.reason) == ("wrong", "tests_failed")
    assert verdict.detail == "assert add(-1, 1) == 0 -> AssertionError"


def test_an_exception_inside_the_solution_points_at_the_test_that_called_it():
    verdict = verify_code("def add(a, b):\n    return a + undefined_name\n", ADD, FAST)
    assert verdict.reason == "tests_failed"
    assert verdict.detail == "assert add(1, 2) == 3 -> NameError: name 'undefined_name' is not defined"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("```python\ndef add(a, b):\n    while True:\n        pass\n```", "timeout"),
        ("```python\ndef add(a, b):\n    return len(bytearray(10 * 1024 ** 3))\n```", "memory_limit"),
        ("```python\ndef add(a, b):\n    open('f', 'wb').write(b'x' * (64 << 20))\n```", "file_size_limit"),
        ("```python\ndef add(a, b)\n    return a + b\n```", "syntax_error"),
        ("I would add the two numbers together.", "no_code_block"),
    ],
)
def test_failure_reasons(answer, reason):
    verdict = verify_code(answer, ADD, SandboxLimits(timeout_s=1.5))
    assert (verdict.status, verdict.reason, verdict.verifier) == ("wrong", reason, "code")


def test_code_block_choice():
    answer = (
        "First a helper:\n```python\nprint('usage example')\n```\n"
        "Then the function:\n```python\ndef add(a, b):\n    return a + b\n```\n"
        "```bash\npip install nothing\n```"
    )
    assert extract_code(answer, {"add"}).startswith("def add")
    assert extract_code(answer).startswith("print(")
    assert extract_code("```\ndef add(a, b):\n    return a + b\n```") == "def add(a, b):\n    return a + b\n"
    assert extract_code("def add(a, b):\n    return a + b") == "def add(a, b):\n    return a + b"
    assert extract_code("Add them: a plus b.") is None
    # A truncated answer: the fence never closes.
    assert extract_code("```python\ndef add(a, b):\n    return a + b").startswith("def add")
    assert called_names(("assert add(len([1]), 2) == 3",)) == {"add"}


@pytest.mark.parametrize(
    "answer",
    [
        "```python\n    return sum(numbers)\n```",
        "```python\nreturn sum(numbers)\n```",
        "```python\ndef total(numbers):\n    return sum(numbers)\n```",
        "```python\nfrom typing import List\n\ndef total(numbers: List[int]) -> int:\n    return sum(numbers)\n```",
    ],
)
def test_humaneval_answer_shapes_run_against_check(answer):
    assert verify_code(answer, HUMANEVAL, FAST).reason == "correct"


def test_humaneval_wrong_answer_fails_in_check():
    verdict = verify_code("```python\ndef total(numbers):\n    return len(numbers)\n```", HUMANEVAL, FAST)
    assert verdict.reason == "tests_failed"
    assert verdict.detail == "assert candidate([1, 2, 3]) == 6 -> AssertionError"


def test_program_layout_marks_the_test_lines():
    task = VerifiableTask.mbpp(["assert f() == 1"], setup="import math")
    program = build_program("def f():\n    return 1", task)
    lines = program.source.split("\n")
    assert lines[0] == "import math"
    assert [lines[n - 1] for n in sorted(program.test_lines)] == ["assert f() == 1"]


def test_task_from_metadata_reads_the_source_fields():
    mbpp = task_from_metadata(
        None, {"test_list": ["assert f(1) == 1"], "challenge_test_list": ["assert f(2) == 2"], "test_setup_code": ""}
    )
    assert mbpp.kind == "code" and mbpp.tests == ("assert f(1) == 1", "assert f(2) == 2")
    plain = task_from_metadata(
        None, {"test_list": ["assert f(1) == 1"], "challenge_test_list": ["x"]}, include_challenge_tests=False
    )
    assert plain.tests == ("assert f(1) == 1",)
    humaneval = task_from_metadata(None, {"test": "def check(c): pass", "entry_point": "f", "prompt": "def f():\n"})
    assert (humaneval.kind, humaneval.entry_point, humaneval.code_prompt) == ("code", "f", "def f():\n")
    # Tests win over a reference the row may also carry.
    assert task_from_metadata("#### 5", {"test_list": ["assert True"]}).kind == "code"
