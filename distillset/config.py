"""Settings read from environment variables, with the safe defaults documented in the README.

The engine reads its configuration here and nowhere else, so `.env.example`, the README and
the code stay in one place. Secrets (``TEACHER_API_KEY``, AWS keys) are read but never logged:
``Settings.__repr__`` masks them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The project checkout (shipped data and SQL live beside the engine package)."""

DATA_DIR = PROJECT_ROOT / "data"
SQL_DIR = PROJECT_ROOT / "sql"
DEFAULT_TEACHER_MODEL = "meta-llama/Llama-3.1-405B-Instruct"
DEFAULT_PROMPTS_URL = str(DATA_DIR / "sample_prompts")
# What lives under DISTILLSET_HOME.
CATALOG_FILE = "catalog.duckdb"
LEDGER_FILE = "ledger.sqlite"
CACHE_DIR = "cache"


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_float(name: str, default: float | None) -> float | None:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def env_int(name: str, default: int | None) -> int | None:
    value = env_float(name, None)
    if value is None:
        return default
    if value != int(value):
        raise ValueError(f"{name}={value!r} is not a whole number")
    return int(value)


def default_home() -> Path:
    """``DISTILLSET_HOME``, or ``.distillset/`` in the current directory (the project)."""
    return Path(env_str("DISTILLSET_HOME", str(Path.cwd() / ".distillset"))).expanduser().resolve()


@dataclass(frozen=True)
class TeacherSettings:
    """How to reach the teacher and how to sample from it.

    ``base_url=None`` means: start the embedded simulator on loopback and mark everything
    it answers as simulated.
    """

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str = DEFAULT_TEACHER_MODEL
    max_concurrency: int = 64
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 120.0
    max_retries: int = 6
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int | None = None
    system_prompt: str | None = None
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    budget_tokens: int | None = None
    budget_usd: float | None = None

    @property
    def simulated(self) -> bool:
        return self.base_url is None

    def sampling_params(self) -> dict:
        """The sampling parameters that determine an answer (part of every request hash)."""
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            params["seed"] = self.seed
        return params

    @classmethod
    def from_env(cls) -> "TeacherSettings":
        return cls(
            base_url=env_str("TEACHER_BASE_URL"),
            api_key=env_str("TEACHER_API_KEY"),
            model=env_str("TEACHER_MODEL", DEFAULT_TEACHER_MODEL),
            max_concurrency=env_int("TEACHER_MAX_CONCURRENCY", 64),
            requests_per_minute=env_float("TEACHER_REQUESTS_PER_MINUTE", None),
            tokens_per_minute=env_float("TEACHER_TOKENS_PER_MINUTE", None),
            timeout_s=env_float("TEACHER_TIMEOUT_S", 120.0),
            max_retries=env_int("TEACHER_MAX_RETRIES", 6),
            temperature=env_float("TEACHER_TEMPERATURE", 0.7),
            top_p=env_float("TEACHER_TOP_P", 0.95),
            max_tokens=env_int("TEACHER_MAX_TOKENS", 1024),
            seed=env_int("TEACHER_SEED", None),
            system_prompt=env_str("TEACHER_SYSTEM_PROMPT"),
            price_input_per_mtok=env_float("TEACHER_PRICE_INPUT_PER_MTOK", 0.0),
            price_output_per_mtok=env_float("TEACHER_PRICE_OUTPUT_PER_MTOK", 0.0),
            budget_tokens=env_int("TEACHER_BUDGET_TOKENS", None),
            budget_usd=env_float("TEACHER_BUDGET_USD", None),
        )

    def with_overrides(self, **changes) -> "TeacherSettings":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Settings:
    """Everything the flow needs, from the environment (see README, "Configuration")."""

    home: Path
    prompts_url: str
    storage_url: str
    default_license: str = "unknown"
    validation_fraction: float = 0.05
    training_set_name: str | None = None

    @property
    def catalog_path(self) -> Path:
        return self.home / CATALOG_FILE

    @property
    def ledger_path(self) -> Path:
        return self.home / LEDGER_FILE

    @classmethod
    def from_env(cls) -> "Settings":
        home = default_home()
        return cls(
            home=home,
            prompts_url=env_str("DISTILLSET_PROMPTS_URL", DEFAULT_PROMPTS_URL),
            storage_url=env_str("DISTILLSET_STORAGE_URL", str(home / "training_sets")),
            default_license=env_str("DISTILLSET_DEFAULT_LICENSE", "unknown"),
            validation_fraction=env_float("DISTILLSET_VALIDATION_FRACTION", 0.05),
            training_set_name=env_str("DISTILLSET_TRAINING_SET_NAME"),
        )
