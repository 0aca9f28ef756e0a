"""Verifier entry points (distillset.verify.engine, task, verdict): one contract for every verifier.

Protects: ``task_from_metadata`` picks code, then ifeval, then math (only for a reference that
holds a final answer), else None; ``verify`` dispatches by task kind and gives
``unverifiable``/``no_verifier`` for a prompt with nothing verifiable; ``verify_many`` keeps the
order of its inputs while running code on a thread pool; a ``Verdict`` rejects unknown statuses,
never passes unless ``correct``, and keeps its texts short; the engine package imports no dagster
and reads no environment variable; code and IFEval callers do not pay sympy's import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import distillset.verify as verify_package
from distillset.verify import Verdict, VerifiableTask, task_from_metadata, verify, verify_many
from distillset.verify.sandbox import SandboxLimits


def test_task_choice_from_metadata():
    assert task_from_metadata("#### 72", None).kind == "math"
    assert task_from_metadata("She makes 18.\n#### 18", {"category": "math"}).kind == "math"
    assert task_from_metadata('The answer is "Washington, DC".', None) is None
    assert task_from_metadata(None, None) is None
    assert task_from_metadata("", {}) is None
    ifeval = task_from_metadata(None, {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})
    assert ifeval.kind == "ifeval" and ifeval.instruction_kwargs == ({},)
    # A kwargs list that does not match the ids is not a task to guess at.
    assert task_from_metadata(None, {"instruction_id_list": ["a:b", "c:d"], "kwargs": [{}]}) is None
    assert task_from_metadata("#### 5", {"instruction_id_list": ["punctuation:no_comma"]}).kind == "ifeval"


def test_verify_dispatches_by_kind():
    assert verify("The answer is 72.", VerifiableTask.math("#### 72")).verifier == "math"
    assert verify("No commas here", VerifiableTask.ifeval(["punctuation:no_comma"])).verifier == "ifeval"
    code = verify(
        "def f():\n    return 1\n", VerifiableTask.mbpp(["assert f() == 1"]), code_limits=SandboxLimits(timeout_s=5)
    )
    assert (code.verifier, code.status) == ("code", "correct")
    nothing = verify("anything", None)
    assert (nothing.status, nothing.reason, nothing.verifier) == ("unverifiable", "no_verifier", "none")


def test_verify_many_keeps_order_and_runs_code_in_parallel():
    code_ok = VerifiableTask.mbpp(["assert f() == 1"])
    answers = ["def f():\n    return 1", "The answer is 3", "def f():\n    return 2", "x", "def f():\n    return 1"]
    tasks = [code_ok, VerifiableTask.math("3"), code_ok, None, code_ok]
    verdicts = verify_many(answers, tasks, code_limits=SandboxLimits(timeout_s=5), max_workers=3)
    assert [(v.verifier, v.status) for v in verdicts] == [
        ("code", "correct"),
        ("math", "correct"),
        ("code", "wrong"),
        ("none", "unverifiable"),
        ("code", "correct"),
    ]
    with pytest.raises(ValueError):
        verify_many(["a"], [])


def test_verdict_contract():
    with pytest.raises(ValueError):
        Verdict("maybe", "x", "math")
    assert not Verdict("unverifiable", "no_verifier", "none").passed
    long = Verdict("wrong", "wrong_answer", "math", expected="1" * 1000, detail="d" * 1000)
    assert len(long.expected) <= 200 and len(long.detail) <= 300
    assert set(long.as_dict()) == {"status", "reason", "verifier", "expected", "extracted", "detail"}


def test_task_validation():
    with pytest.raises(ValueError):
        VerifiableTask.math("  ")
    with pytest.raises(ValueError):
        VerifiableTask("code")
    with pytest.raises(ValueError):
        VerifiableTask.ifeval(["a:b"], [{}, {}])


def test_the_engine_package_stays_plain_python():
    package = Path(verify_package.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(name.split(".")[0] in {"dagster", "assets", "orchestration"} for name in names), path
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                pytest.fail(f"{path.name} reads the environment")


def test_exports_resolve_and_code_or_ifeval_callers_do_not_load_sympy():
    assert sorted(verify_package.__all__) == sorted(verify_package._EXPORTS)
    assert all(getattr(verify_package, name) is not None for name in verify_package.__all__)
    probe = (
        "import sys, distillset.verify as v\n"
        "v.verify('No commas', v.VerifiableTask.ifeval(['punctuation:no_comma']))\n"
        "v.verify_code, v.task_from_metadata('#### 5', None)\n"
        "print('sympy' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
