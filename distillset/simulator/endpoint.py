"""The endpoint factory: the configured teacher, or the embedded simulator when there is none.

It lives with the simulator, not in ``distillset.teacher``, so that production code never imports
the test double; the edges (the Dagster ``TeacherResource``, benchmarks, commands) call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distillset.settings import TeacherSettings
from distillset.simulator.server import DEFAULT_MODELS, TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint


@contextlib.contextmanager
def open_endpoint(settings: TeacherSettings, **simulator_kwargs) -> Iterator[TeacherEndpoint]:
    """The configured endpoint, or a ``TeacherSimulator`` on a free loopback port for the duration.

    Args:
        settings: ``base_url=None`` starts the simulator (``simulated=True``).
        **simulator_kwargs: passed to ``TeacherSimulator`` (latency_s, faults, api_key, models...).
    """
    if settings.base_url is not None:
        yield TeacherEndpoint(
            base_url=settings.base_url,
            api_key=settings.api_key,
            simulated=False,
            share_across_endpoints=settings.share_answers_across_endpoints,
        )
        return
    models = simulator_kwargs.pop("models", None) or list(dict.fromkeys([settings.model, *DEFAULT_MODELS]))
    simulator_kwargs.setdefault("port", 0)
    with TeacherSimulator(models, **simulator_kwargs) as simulator:
        yield TeacherEndpoint(base_url=simulator.base_url, api_key=simulator_kwargs.get("api_key"), simulated=True)
