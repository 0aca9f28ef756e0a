"""A teacher typed by hand is checked against the endpoint's /models before the first paid call.

Protects: a run for a model the endpoint does not serve fails at its first paid stage (the
scorecard when it measures, else the teacher stage) with one line saying what the endpoint serves,
and nothing is paid.
"""

from __future__ import annotations

import dagster as dg
import pytest

from distillset.simulator.server import TeacherSimulator
from helpers.flow import materialize_flow, step_failures

SERVED = ["org/served-a", "org/served-b"]


@pytest.mark.parametrize(("limit", "step"), [("0", "teacher_generations"), ("2", "teacher_scorecard")])
def test_a_model_the_endpoint_does_not_serve_fails_before_paying(
    distillset_home, sample_prompts_dir, monkeypatch, limit, step
):
    sample_prompts_dir(3)
    monkeypatch.setenv("DISTILLSET_SCORECARD_LIMIT", limit)
    with TeacherSimulator(models=SERVED) as sim:
        monkeypatch.setenv("TEACHER_BASE_URL", sim.base_url)
        result = materialize_flow(dg.DagsterInstance.ephemeral(), model="org/typo-model")
        assert sim.stats()["requests"] == 0
    failures = step_failures(result)
    assert failures and failures[0].startswith(step), failures
    assert "teacher org/typo-model is not served by http://127.0.0.1:" in failures[0]
    assert "it serves org/served-a, org/served-b" in failures[0]
