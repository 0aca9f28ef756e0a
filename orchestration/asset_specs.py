"""What the definitions add to the assets from the settings: code references, code versions, kinds, freshness.

The asset modules declare the graph; what depends on the environment or on files outside Python is
added here, once, where the definitions are built:

- ``dagster/code_references``: every asset links to its Python function, ``quality_scores`` also to
  the ``sql/quality/*.sql`` files that decide it;
- code versions from content (``distillset.code_versions``): a changed rule file, refusal phrase,
  threshold, sampling parameter or system prompt shows downstream training sets as stale;
- the kinds of ``training_set`` say where versions go (``s3`` or ``folder``);
- ``training_set`` has a freshness policy of ``DISTILLSET_TRAINING_SET_MAX_AGE`` (none when 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from distillset.code_versions import quality_code_version, quality_sql_files, teacher_code_version
from distillset.settings import Settings

CODE_REFERENCES = "dagster/code_references"
_TEACHER_STAGES = ("teacher_generations", "teacher_scorecard")
_PUBLISHED_FORMATS = {"parquet", "json"}


def storage_kinds(storage_url: str) -> set[str]:
    """The kinds of ``training_set``: ``s3`` for an ``s3://`` URL, ``folder`` otherwise, plus the file formats."""
    return _PUBLISHED_FORMATS | {"s3" if storage_url.lower().startswith("s3://") else "folder"}


def code_versions(settings: Settings) -> dict[str, str]:
    """Asset name -> code version, for the stages whose output the settings' rules decide."""
    teacher = teacher_code_version(settings.teacher.sampling)
    quality = quality_code_version(settings.quality.thresholds, settings.quality.refusal_patterns)
    return {"quality_scores": quality, **dict.fromkeys(_TEACHER_STAGES, teacher)}


def _with_sql_references(spec: dg.AssetSpec) -> dg.AssetSpec:
    existing = spec.metadata.get(CODE_REFERENCES)
    references = list(existing.code_references) if existing else []
    references += [
        dg.LocalFileCodeReference(file_path=str(path), label=f"sql/quality/{path.name}") for path in quality_sql_files()
    ]
    return spec.replace_attributes(
        metadata={**spec.metadata, CODE_REFERENCES: dg.CodeReferencesMetadataValue(code_references=references)}
    )


def _freshness(settings: Settings) -> dg.FreshnessPolicy | None:
    max_age = settings.publish.training_set_max_age_s
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(seconds=max_age)) if max_age > 0 else None


def present_assets(assets: Sequence[dg.AssetsDefinition], settings: Settings) -> list[dg.AssetsDefinition]:
    """``assets`` with code references, content-derived code versions, storage kinds and freshness."""
    versions = code_versions(settings)
    kinds = storage_kinds(settings.storage_url)
    freshness = _freshness(settings)

    def present(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        if name in versions:
            spec = spec.replace_attributes(code_version=versions[name])
        if name == "quality_scores":
            spec = _with_sql_references(spec)
        if name == "training_set":
            spec = spec.replace_attributes(kinds=kinds, freshness_policy=freshness)
        return spec

    # Code references are a beta API of Dagster 1.13 (pinned in uv.lock); its warning would repeat per asset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(list(assets))
        return [asset.map_asset_specs(present) for asset in referenced]
