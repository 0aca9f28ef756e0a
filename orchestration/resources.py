"""The configured resources, built from environment variables (see README, "Configuration").

Values are passed as ``dg.EnvVar`` when the variable is set, so Dagster resolves them in the
process that runs the step and never writes them into run config, logs or the UI; unset
variables fall back to the documented defaults.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.resources import CatalogResource, PromptSourceResource, TeacherResource, TrainingSetStorageResource
from distillset.config import DEFAULT_PROMPTS_URL, _env_float as env_float, default_home


def _env(name: str, default=None):
    return dg.EnvVar(name) if os.environ.get(name) else default


def _env_float(name: str, default: float) -> float:
    # Dagster's EnvVar resolves strings and ints only; numbers are never secret, so they are
    # parsed here, with an error that names the variable.
    return env_float(name, default)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    home = default_home()
    return {
        "catalog_db": CatalogResource(home=_env("DISTILLSET_HOME", str(home))),
        "prompt_source": PromptSourceResource(
            url=_env("DISTILLSET_PROMPTS_URL", DEFAULT_PROMPTS_URL),
            default_license=_env("DISTILLSET_DEFAULT_LICENSE", "unknown"),
            extra_benchmarks=_env("DISTILLSET_BENCHMARKS"),
        ),
        "teacher": TeacherResource(
            base_url=_env("TEACHER_BASE_URL"),
            api_key=_env("TEACHER_API_KEY"),
            simulator_latency_ms=_env_float("DISTILLSET_SIMULATOR_LATENCY_MS", 0.0),
        ),
        "training_storage": TrainingSetStorageResource(
            url=_env("DISTILLSET_STORAGE_URL", str(home / "training_sets")),
            name=_env("DISTILLSET_TRAINING_SET_NAME"),
            validation_fraction=_env_float("DISTILLSET_VALIDATION_FRACTION", 0.05),
            formats=_env("DISTILLSET_EXPORT_FORMATS", "openai"),
        ),
    }
