"""The configured resources, built from environment variables (see README, "Configuration").

Values are passed as ``dg.EnvVar`` when the variable is set, so Dagster resolves them in the
process that runs the step and never writes them into run config, logs or the UI; unset
variables fall back to the documented defaults.
"""

from __future__ import annotations

import os

import dagster as dg

from assets.resources import CatalogResource, PromptSourceResource, TeacherResource, TrainingSetStorageResource
from distillset.config import Settings, env_float


def _env_var(name: str, default=None):
    """``dg.EnvVar(name)`` when the variable is set (resolved in the step's process), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


# Numbers are read directly: Dagster's EnvVar resolves strings and ints only, and no number here is a
# secret. `env_float` names the variable in its error.


def build_resources() -> dict[str, dg.ConfigurableResource]:
    # The defaults are the engine's (distillset.config.Settings), so the CLI and Dagster agree.
    defaults = Settings.from_env()
    return {
        "catalog_db": CatalogResource(home=_env_var("DISTILLSET_HOME", str(defaults.home))),
        "prompt_source": PromptSourceResource(
            url=_env_var("DISTILLSET_PROMPTS_URL", defaults.prompts_url),
            default_license=_env_var("DISTILLSET_DEFAULT_LICENSE", defaults.default_license),
            extra_benchmarks=_env_var("DISTILLSET_BENCHMARKS"),
        ),
        "teacher": TeacherResource(
            base_url=_env_var("TEACHER_BASE_URL"),
            api_key=_env_var("TEACHER_API_KEY"),
            simulator_latency_ms=env_float("DISTILLSET_SIMULATOR_LATENCY_MS", 0.0),
        ),
        "training_storage": TrainingSetStorageResource(
            url=_env_var("DISTILLSET_STORAGE_URL", defaults.storage_url),
            name=_env_var("DISTILLSET_TRAINING_SET_NAME"),
            validation_fraction=defaults.validation_fraction,
            formats=_env_var("DISTILLSET_EXPORT_FORMATS", "openai"),
        ),
    }
