"""The Dagster resources the assets use: thin wrappers that hand engine settings to the engine.

Their non-secret fields are config (generated from ``distillset.settings`` by
``assets.settings_config``), so the launchpad shows and can override every value a run uses; their
configured instances are built from the environment once, in ``orchestration/resources.py``, with
secrets passed as ``dg.EnvVar`` so they never land in run config, logs or the UI. The classes live
here because the assets that declare them must not import the orchestration layer.
"""

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import polars as pl

from assets.run_owner import owner_tags
from assets.settings_config import config_class, to_settings
from distillset import catalog
from distillset.catalog_lake import catalog_location
from distillset.scorecards.store import ScorecardStore
from distillset.settings import (
    DEFAULT_HUB_AUTHOR,
    DEFAULT_RELEASE_PATTERN,
    JudgeSettings,
    LicensePolicy,
    PromptSettings,
    PublishSettings,
    QualityGates,
    QualityThresholds,
    SamplingSettings,
    TeacherSettings,
)
from distillset.settings.ledger_url import ledger_location
from distillset.settings.paths import CACHE_DIR, SCORECARDS_FILE
from distillset.simulator.accuracy import parse_model_accuracy
from distillset.simulator.endpoint import open_endpoint
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.ledger import Ledger

# Every partitioned table keys its partition by this column.
PARTITION_COLUMN = "teacher_model"

TeacherOptionsConfig = config_class(TeacherSettings, exclude=("base_url", "api_key", "model"))
SamplingConfig = config_class(SamplingSettings)
QualityThresholdsConfig = config_class(QualityThresholds)
QualityGatesConfig = config_class(QualityGates)
LicensePolicyConfig = config_class(LicensePolicy)


class CatalogResource(dg.ConfigurableResource):
    """Where the catalog, the teacher ledger and local caches live (``DISTILLSET_HOME``, or the
    shared services of ``DISTILLSET_CATALOG_URL`` and ``DISTILLSET_LEDGER_URL``).

        Setting it up also records the run's worker process as run tags (``assets.run_owner``), so a
        run that dies while holding the catalog pool slot can be told from a slow one.
    """

    home: str
    ledger_url: str | None = None
    """``DISTILLSET_LEDGER_URL``: a ledger file shared with other homes, or a PostgreSQL database
    (then a ``dg.EnvVar``: the URL, password and all, never enters run config); default: the home's own."""
    catalog_url: str | None = None
    """``DISTILLSET_CATALOG_URL``: a DuckLake catalog shared by workers (always a ``dg.EnvVar``: the
    PostgreSQL part may hold a password); default: the home's ``catalog.duckdb``."""
    catalog_data_path: str | None = None
    """``DISTILLSET_CATALOG_DATA_PATH``: the DuckLake's Parquet files (``s3://`` or a folder)."""
    s3_endpoint_url: str | None = None
    """``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``: an S3-compatible store holding the lake's data."""
    chunk_rows: int = 50_000
    """``DISTILLSET_CHUNK_ROWS``: rows held at once by the stages that stream to the catalog."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.dagster_run
        if context.instance is None or run is None:
            return
        tags = owner_tags()
        if any(run.tags.get(name) != value for name, value in tags.items()):
            context.instance.add_run_tags(run.run_id, tags)

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def catalog_path(self) -> catalog.Location:
        """The catalog's location: the DuckLake of ``catalog_url``, or ``$DISTILLSET_HOME/catalog.duckdb``."""
        return catalog_location(
            self.catalog_url or None,
            self.catalog_data_path or None,
            self.home_path,
            s3_endpoint_url=self.s3_endpoint_url or None,
        )

    @property
    def ledger_location(self) -> Path | str:
        """The SQLite file, or the ``postgresql://`` URL, of the teacher ledger."""
        return ledger_location(self.ledger_url, self.home_path)

    @property
    def cache_dir(self) -> Path:
        return self.home_path / CACHE_DIR

    def ledger(self) -> Ledger:
        self.home_path.mkdir(parents=True, exist_ok=True)  # the ledger's folder is created by Ledger
        return Ledger(self.ledger_location)

    def read(
        self,
        table: str,
        *,
        partition: str | None = None,
        where: str = "",
        params: list | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """``table`` (one teacher partition of it when ``partition`` is given), optionally filtered
        by a further ``where`` condition and cut to ``limit`` rows; empty when the table does not exist."""
        conditions, values = [], []
        if partition is not None:
            conditions.append(f'"{PARTITION_COLUMN}" = ?')
            values.append(partition)
        if where:
            conditions.append(where)
            values += params or []
        clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        if limit is not None:
            clause += f" LIMIT {int(limit)}"
        return catalog.read_table(self.catalog_path, table, clause, values)

    def write(self, table: str, frame: pl.DataFrame) -> None:
        """Replace an unpartitioned ``table`` with ``frame``."""
        catalog.replace_table(self.catalog_path, table, frame)

    def write_partition(
        self, table: str, frame: pl.DataFrame, partition: str, *, column: str = PARTITION_COLUMN
    ) -> None:
        """Replace the rows of one partition of ``table`` (``column = partition``) with ``frame``."""
        catalog.replace_partition(self.catalog_path, table, frame, column=column, value=partition)

    def write_chunks(self) -> AbstractContextManager[catalog.ChunkWriter]:
        """One write transaction for tables written chunk by chunk (``catalog.write_chunks``)."""
        return catalog.write_chunks(self.catalog_path)

    def count(self, table: str, *, where: str = "", params: list | None = None) -> int:
        """``count(*)`` of ``table`` (``where`` is a condition without the keyword); 0 when it does not exist."""
        return catalog.count_rows(self.catalog_path, table, f"WHERE {where}" if where else "", params)

    def columns(self, table: str) -> list[str]:
        """``table``'s column names, in order (empty when it does not exist)."""
        return catalog.table_columns(self.catalog_path, table)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        """The rows of a read-only query (counts, aggregates, a few rows)."""
        return catalog.query(self.catalog_path, sql, params)


class PromptSourceResource(dg.ConfigurableResource):
    """Where raw prompt files come from (``DISTILLSET_PROMPTS_URL``) and how they are judged."""

    url: str
    default_license: str = "unknown"
    max_prompt_chars: int = 100_000
    follow_symlinks: bool = False
    extra_benchmarks: str | None = None
    s3_endpoint_url: str | None = None

    def settings(self) -> PromptSettings:
        return PromptSettings(
            url=self.url,
            default_license=self.default_license,
            max_prompt_chars=self.max_prompt_chars,
            follow_symlinks=self.follow_symlinks,
        )

    def storage_options(self) -> dict:
        return {"endpoint_url": self.s3_endpoint_url} if self.s3_endpoint_url else {}


class TeacherResource(dg.ConfigurableResource):
    """The teacher endpoint and how to spend on it. With no ``base_url`` the embedded simulator serves.

    ``base_url`` and ``api_key`` come through ``dg.EnvVar`` (``TEACHER_BASE_URL``,
    ``TEACHER_API_KEY``); concurrency, rate limits, retries, prices, budget (``options``) and
    sampling (``sampling``) are config with defaults from the ``TEACHER_*`` variables.
    """

    base_url: str | None = None
    api_key: str | None = None
    simulator_latency_ms: float = 0.0
    simulator_accuracy: float = 0.85
    simulator_model_accuracy: str | None = None
    options: TeacherOptionsConfig = TeacherOptionsConfig()
    sampling: SamplingConfig = SamplingConfig()

    def settings_for(self, model: str) -> TeacherSettings:
        return to_settings(
            TeacherSettings,
            self.options,
            base_url=self.base_url or None,
            api_key=self.api_key or None,
            model=model,
            sampling=to_settings(SamplingSettings, self.sampling),
        )

    @contextlib.contextmanager
    def endpoint(
        self, settings: TeacherSettings, answer_key: Mapping[str, str] | None = None
    ) -> Iterator[TeacherEndpoint]:
        """The teacher endpoint for one step; the simulator, if it serves, knows ``answer_key``."""
        with open_endpoint(
            settings,
            latency_s=self.simulator_latency_ms / 1000.0,
            answer_key=answer_key,
            accuracy=self.simulator_accuracy,
            model_accuracy=parse_model_accuracy(self.simulator_model_accuracy),
        ) as endpoint:
            yield endpoint


class QualityResource(dg.ConfigurableResource):
    """The quality rules' thresholds, the gates and the user's extra refusal phrases."""

    thresholds: QualityThresholdsConfig = QualityThresholdsConfig()
    gates: QualityGatesConfig = QualityGatesConfig()
    refusal_patterns: str | None = None

    def threshold_settings(self) -> QualityThresholds:
        return to_settings(QualityThresholds, self.thresholds)

    def gate_settings(self) -> QualityGates:
        return to_settings(QualityGates, self.gates)

    def extra_patterns(self) -> Path | None:
        return Path(self.refusal_patterns).expanduser() if self.refusal_patterns else None


class JudgeResource(dg.ConfigurableResource):
    """The optional LLM-as-judge: its model and endpoint (default: the teacher's), weight and cap.

    ``enabled`` does not change the asset graph: it says which job the CLI and the release sensor
    launch (``distill_with_judge_job`` rather than ``distill_job``).

    ``base_url`` and ``api_key`` come through ``dg.EnvVar`` (``DISTILLSET_JUDGE_BASE_URL``,
    ``DISTILLSET_JUDGE_API_KEY``).
    """

    enabled: bool = False
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    weight: float = 0.5
    min_score: float | None = None
    max_tokens: int = 256

    def settings(self) -> JudgeSettings:
        return JudgeSettings(
            enabled=self.enabled,
            model=self.model or None,
            base_url=self.base_url or None,
            api_key=self.api_key or None,
            weight=self.weight,
            min_score=self.min_score,
            max_tokens=self.max_tokens,
        )


class TrainingSetStorageResource(dg.ConfigurableResource):
    """Where training set versions are published (``DISTILLSET_STORAGE_URL``: folder or s3://)."""

    url: str
    name: str | None = None
    validation_fraction: float = 0.05
    formats: str = "openai"
    stale_after_s: float = 6 * 3600.0
    allow_partial: bool = False
    s3_endpoint_url: str | None = None
    licenses: LicensePolicyConfig = LicensePolicyConfig()

    def publish_settings(self) -> PublishSettings:
        return PublishSettings(
            storage_url=self.url,
            training_set_name=self.name or None,
            validation_fraction=self.validation_fraction,
            export_formats=tuple(self.format_list()),
            stale_after_s=self.stale_after_s,
            allow_partial=self.allow_partial,
        )

    def set_name(self, teacher_model: str) -> str:
        """The training set's name: configured, else derived from the teacher model id."""
        return self.publish_settings().set_name(teacher_model)

    def format_list(self) -> list[str]:
        return [f.strip() for f in self.formats.split(",") if f.strip()]

    def license_policy(self) -> LicensePolicy:
        return to_settings(LicensePolicy, self.licenses)

    def storage_options(self) -> dict:
        return {"endpoint_url": self.s3_endpoint_url} if self.s3_endpoint_url else {}


class ScorecardResource(dg.ConfigurableResource):
    """Teacher scorecards and the release gate (``DISTILLSET_SCORECARD_*``)."""

    gate: bool = True
    margin: float = 0.02
    benchmarks: str = "gsm8k,ifeval"
    limit: int = 200

    def benchmark_list(self) -> list[str]:
        return [b.strip() for b in self.benchmarks.split(",") if b.strip()]

    def store(self, catalog_db: CatalogResource) -> ScorecardStore:
        """The evaluations file beside the ledger, ``$DISTILLSET_HOME/scorecards.sqlite``."""
        return ScorecardStore(catalog_db.home_path / SCORECARDS_FILE)


class ReleaseSourceResource(dg.ConfigurableResource):
    """Where the new-release sensor looks besides the teacher endpoint, and what it keeps."""

    hub_url: str | None = None
    hub_author: str = DEFAULT_HUB_AUTHOR
    release_pattern: str = DEFAULT_RELEASE_PATTERN
