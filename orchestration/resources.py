"""The configured resources, built from environment variables (see README, "Configuration").

Values are passed as ``dg.EnvVar`` when the variable is set, so Dagster resolves them in the
process that runs the step and never writes them into run config, logs or the UI; unset
variables fall back to the documented defaults.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.resources import CatalogResource, PromptSourceResource, TeacherResource, TrainingSetStorageResource
from distillset.config import DEFAULT_PROMPTS_URL, default_home, env_float


def _env_var(name: str, default=None):
    """``dg.EnvVar(name)`` when the variable is set (resolved in the step's process), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


# Numbers are read directly: Dagster's EnvVar resolves strings and ints only, and no number here is a
# secret. `env_float` names the variable in its error.


def build_resources() -> dict[str, dg.ConfigurableResource]:
    home = default_home()
    return {
        "catalog_db": CatalogResource(home=_env_var("DISTILLSET_HOME", str(home))),
        "prompt_source": PromptSourceResource(
            url=_env_var("DISTILLSET_PROMPTS_URL", DEFAULT_PROMPTS_URL),
            default_license=_env_var("DISTILLSET_DEFAULT_LICENSE", "unknown"),
            extra_benchmarks=_env_var("DISTILLSET_BENCHMARKS"),
        ),
        "teacher": TeacherResource(
            base_url=_env_var("TEACHER_BASE_URL"),
            api_key=_env_var("TEACHER_API_KEY"),
            simulator_latency_ms=env_float("DISTILLSET_SIMULATOR_LATENCY_MS", 0.0),
        ),
        "training_storage": TrainingSetStorageResource(
            url=_env_var("DISTILLSET_STORAGE_URL", str(home / "training_sets")),
            name=_env_var("DISTILLSET_TRAINING_SET_NAME"),
            validation_fraction=env_float("DISTILLSET_VALIDATION_FRACTION", 0.05),
            formats=_env_var("DISTILLSET_EXPORT_FORMATS", "openai"),
        ),
    }
