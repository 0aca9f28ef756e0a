"""The Dagster resources the assets use: thin wrappers that hand engine settings to the engine.

Their configured instances are built from environment variables, through ``dg.EnvVar`` for
anything secret, in ``orchestration/resources.py``; the classes live here because the assets
that declare them must not import the orchestration layer.
"""


import contextlib
from pathlib import Path
from collections.abc import Iterator, Mapping

import dagster as dg

from distillset.config import CACHE_DIR, CATALOG_FILE, LEDGER_FILE, TeacherSettings
from distillset.teacher.ledger import Ledger
from distillset.teacher.generate import TeacherEndpoint, open_endpoint


class CatalogResource(dg.ConfigurableResource):
    """Where the DuckDB catalog, the teacher ledger and local caches live (``DISTILLSET_HOME``)."""

    home: str

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def catalog_path(self) -> Path:
        return self.home_path / CATALOG_FILE

    @property
    def ledger_path(self) -> Path:
        return self.home_path / LEDGER_FILE

    @property
    def cache_dir(self) -> Path:
        return self.home_path / CACHE_DIR

    def ledger(self) -> Ledger:
        self.home_path.mkdir(parents=True, exist_ok=True)
        return Ledger(self.ledger_path)


class PromptSourceResource(dg.ConfigurableResource):
    """Where raw prompt files come from (``DISTILLSET_PROMPTS_URL``) and how they are judged."""

    url: str
    default_license: str = "unknown"
    max_prompt_chars: int = 100_000
    extra_benchmarks: str | None = None


class TeacherResource(dg.ConfigurableResource):
    """The teacher endpoint. With no ``base_url`` the embedded simulator serves on loopback.

    Only the endpoint and its key are resource fields (the key through ``dg.EnvVar``, so it never
    lands in run config); tuning knobs (concurrency, rate limits, sampling, prices, budget) are
    read by the engine from ``TEACHER_*`` variables, see ``distillset.config.TeacherSettings``.
    """

    base_url: str | None = None
    api_key: str | None = None
    simulator_latency_ms: float = 0.0

    def settings_for(self, model: str) -> TeacherSettings:
        return TeacherSettings.from_env().with_overrides(base_url=self.base_url, api_key=self.api_key, model=model)

    @contextlib.contextmanager
    def endpoint(self, settings: TeacherSettings, answer_key: Mapping[str, str] | None = None) -> Iterator[TeacherEndpoint]:
        """The teacher endpoint for one step; the simulator, if it serves, knows ``answer_key``."""
        with open_endpoint(settings, latency_s=self.simulator_latency_ms / 1000.0, answer_key=answer_key) as endpoint:
            yield endpoint


class TrainingSetStorageResource(dg.ConfigurableResource):
    """Where training set versions are published (``DISTILLSET_STORAGE_URL``: folder or s3://)."""

    url: str
    name: str | None = None
    validation_fraction: float = 0.05
    formats: str = "openai"

    def set_name(self, teacher_model: str) -> str:
        """The training set's name: configured, else derived from the teacher model id."""
        if self.name:
            return self.name
        slug = teacher_model.split("/")[-1].lower().replace(".", "-").replace("_", "-")
        return f"distill-{slug}"

    def format_list(self) -> list[str]:
        return [f.strip() for f in self.formats.split(",") if f.strip()]
