"""The configured resources, built once from the settings tree (see README, "Configuration").

Every non-secret value becomes the *default* of a resource config field (``with_defaults``), so
the launchpad shows it and a run may override any one field while the others keep the
environment's values. Endpoint URLs and keys are ``dg.EnvVar`` defaults when their variable is
set: Dagster resolves them in the process that runs the step and never writes them into run
config, logs or the UI.
"""

from __future__ import annotations

import dagster as dg

from assets.resources import (
    CatalogResource,
    JudgeResource,
    LicensePolicyConfig,
    PromptSourceResource,
    QualityGatesConfig,
    QualityResource,
    QualityThresholdsConfig,
    ReleaseSourceResource,
    SamplingConfig,
    ScorecardResource,
    TeacherOptionsConfig,
    TeacherResource,
    TrainingSetStorageResource,
)
from assets.settings_config import config_class, with_defaults
from distillset.settings import (
    LicensePolicy,
    QualityGates,
    QualityThresholds,
    SamplingSettings,
    Settings,
    TeacherSettings,
)
from distillset.settings.ledger_url import is_postgres_url


def _secret(name: str, value: str | None):
    """``dg.EnvVar(name)`` when the variable is set (resolved in the step's process), else None."""
    return dg.EnvVar(name) if value else None


def _config(base: type[dg.Config], settings_cls: type, values, **kwargs) -> dg.Config:
    """An instance of a subclass of ``base`` whose defaults are ``values``' fields."""
    generated = config_class(settings_cls, defaults=values, **kwargs)
    return with_defaults(base, **{name: getattr(values, name) for name in generated.model_fields})()


def _resource(cls: type[dg.ConfigurableResource], **defaults) -> dg.ConfigurableResource:
    return with_defaults(cls, **defaults)()


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource, from one settings tree (``distillset.settings.load_settings()``)."""
    teacher, judge, publish = settings.teacher, settings.judge, settings.publish
    return {
        "catalog_db": _resource(
            CatalogResource,
            home=str(settings.home),
            # A PostgreSQL URL may carry a password: resolved from the environment in the step's process.
            ledger_url=_secret("DISTILLSET_LEDGER_URL", settings.ledger_url)
            if is_postgres_url(settings.ledger_url)
            else settings.ledger_url,
            # Always from the environment: the PostgreSQL part of a DuckLake URL may carry a password.
            catalog_url=_secret("DISTILLSET_CATALOG_URL", settings.catalog_url),
            catalog_data_path=settings.catalog_data_path,
            s3_endpoint_url=settings.s3_endpoint_url,
            chunk_rows=settings.chunk_rows,
        ),
        "prompt_source": _resource(
            PromptSourceResource,
            url=settings.prompts.url,
            default_license=settings.prompts.default_license,
            max_prompt_chars=settings.prompts.max_prompt_chars,
            follow_symlinks=settings.prompts.follow_symlinks,
            extra_benchmarks=settings.curation.benchmarks,
            s3_endpoint_url=settings.s3_endpoint_url,
        ),
        "teacher": _resource(
            TeacherResource,
            base_url=_secret("TEACHER_BASE_URL", teacher.base_url),
            api_key=_secret("TEACHER_API_KEY", teacher.api_key),
            simulator_latency_ms=settings.simulator.latency_ms,
            simulator_accuracy=settings.simulator.accuracy,
            simulator_model_accuracy=settings.simulator.model_accuracy,
            options=_config(TeacherOptionsConfig, TeacherSettings, teacher, exclude=("base_url", "api_key", "model")),
            sampling=_config(SamplingConfig, SamplingSettings, teacher.sampling),
        ),
        "quality": _resource(
            QualityResource,
            thresholds=_config(QualityThresholdsConfig, QualityThresholds, settings.quality.thresholds),
            gates=_config(QualityGatesConfig, QualityGates, settings.gates),
            refusal_patterns=str(settings.quality.refusal_patterns) if settings.quality.refusal_patterns else None,
        ),
        "judge": _resource(
            JudgeResource,
            enabled=judge.enabled,
            model=judge.model,
            base_url=_secret("DISTILLSET_JUDGE_BASE_URL", judge.base_url),
            api_key=_secret("DISTILLSET_JUDGE_API_KEY", judge.api_key),
            weight=judge.weight,
            min_score=judge.min_score,
            max_tokens=judge.max_tokens,
        ),
        "training_storage": _resource(
            TrainingSetStorageResource,
            url=settings.storage_url,
            name=publish.training_set_name,
            validation_fraction=publish.validation_fraction,
            formats=",".join(publish.export_formats),
            stale_after_s=publish.stale_after_s,
            allow_partial=publish.allow_partial,
            s3_endpoint_url=settings.s3_endpoint_url,
            licenses=_config(LicensePolicyConfig, LicensePolicy, settings.licenses),
        ),
        "scorecards": _resource(
            ScorecardResource,
            gate=settings.scorecards.gate,
            margin=settings.scorecards.margin,
            benchmarks=",".join(settings.scorecards.benchmarks),
            limit=settings.scorecards.limit,
        ),
        "release_source": _resource(
            ReleaseSourceResource,
            hub_url=settings.refresh.hub_url,
            hub_author=settings.refresh.hub_author,
            release_pattern=settings.refresh.release_pattern,
        ),
    }
