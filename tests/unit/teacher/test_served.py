"""The teacher model is checked against the endpoint's /models before anything is paid.

Protects: a model the endpoint does not list fails with one line naming the model, the endpoint
(never its key) and what it serves; an accepted alias listed is enough; an endpoint whose /models
cannot be read only yields a warning, so the caller goes on.
"""

from __future__ import annotations

import pytest

from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.served import ModelNotServedError, check_model_served

SECRET = "sk-served-test-secret"


@pytest.fixture
def sim():
    with TeacherSimulator(models=["org/model-a", "org/model-b"], api_key=SECRET) as running:
        yield running


def _endpoint(base_url: str) -> TeacherEndpoint:
    return TeacherEndpoint(base_url=base_url, api_key=SECRET, simulated=False)


def test_a_served_model_passes(sim):
    assert check_model_served(_endpoint(sim.base_url), "org/model-b") is None


def test_a_model_not_listed_fails_naming_what_is_served(sim):
    with pytest.raises(ModelNotServedError) as raised:
        check_model_served(_endpoint(sim.base_url), "org/model-typo")
    message = str(raised.value)
    assert message == (
        f"teacher org/model-typo is not served by {_endpoint(sim.base_url).public_address}: "
        "it serves org/model-a, org/model-b"
    )
    assert SECRET not in message
    assert sim.stats()["requests"] == 0


def test_a_listed_alias_is_enough(sim):
    assert check_model_served(_endpoint(sim.base_url), "org/model", aliases=["org/model-a"]) is None


def test_a_missing_listing_warns_instead_of_failing(sim):
    warning = check_model_served(_endpoint(sim.base_url + "/no-such-path"), "org/model-typo")
    assert warning and "404" in warning and "org/model-typo" in warning
    assert SECRET not in warning
