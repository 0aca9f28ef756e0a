"""The settings tree: every knob of distillset, typed, with its environment variable and bounds.

``Settings`` is the root; each stage reads its own section (``settings.teacher``,
``settings.quality.thresholds``, ``settings.publish``...). Engine functions take these dataclasses
(or plain values from them) as arguments; only :func:`distillset.settings.load_settings` and the
command-line entry read the environment. The Dagster resources mirror the non-secret fields as
config (visible and overridable in the launchpad) and pass secrets through ``dg.EnvVar``.

Every dataclass validates itself on construction (:func:`~distillset.settings.fields.validate`),
so a bad value fails before anything is paid for, with a message that names the variable.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from distillset.settings.catalog_url import check_catalog_data_path, check_catalog_url, is_ducklake_url
from distillset.settings.env import SettingsError
from distillset.settings.executor import ExecutorSettings
from distillset.settings.fields import setting, validate
from distillset.settings.ledger_url import check_ledger_url, ledger_location, ledger_path
from distillset.settings.paths import (
    CACHE_DIR,
    CATALOG_FILE,
    DAGSTER_DIR,
    DEFAULT_PROMPTS_URL,
    SCORECARDS_FILE,
    TRAINING_SETS_DIR,
)

DEFAULT_TEACHER_MODEL = "meta-llama/Llama-3.1-405B-Instruct"
DEFAULT_RELEASE_PATTERN = r"(?i)^meta-llama/(meta-)?llama-[0-9][^/]*instruct"
"""Llama instruct releases as Meta names them on the hub: ``meta-llama/Llama-3.1-405B-Instruct``,
``meta-llama/Meta-Llama-3-70B-Instruct``, ``meta-llama/Llama-4-Scout-17B-16E-Instruct``; base
models (``meta-llama/Llama-3.1-8B``), guard models and other authors' models do not match."""
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
DEFAULT_HUB_AUTHOR = "meta-llama"
JUDGE_MIN_SCORE = 1
JUDGE_MAX_SCORE = 10
# A training set name becomes a folder under the storage URL: no separators, no dot-dot.
TRAINING_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _quality_rules():
    from distillset.quality.rules import QUALITY_RULES

    return QUALITY_RULES


def _batch_windows():
    return ("24h",)


def _batch_fallbacks():
    return ("batch", "online")


def _export_formats():
    from distillset.publish.exports import FORMATS

    return FORMATS


def _scorecard_benchmarks():
    from distillset.scorecards.sets import BENCHMARKS

    return tuple(BENCHMARKS)


def _model_accuracy(value: str) -> str | None:
    # Imported lazily: the parser lives with the simulator, which production code never loads otherwise.
    from distillset.simulator.accuracy import model_accuracy_problem

    return model_accuracy_problem(value)


def _training_set_name(value: str) -> str | None:
    if TRAINING_SET_NAME.match(value) and ".." not in value:
        return None
    return "must be letters, digits, '.', '_' or '-' (at most 128, no '..'): it becomes a folder name"


@dataclass(frozen=True)
class SamplingSettings:
    """The sampling parameters; all of them are part of every request's ledger key."""

    temperature: float = setting(0.7, env="TEACHER_TEMPERATURE", ge=0, le=2, help="sampling temperature")
    top_p: float = setting(0.95, env="TEACHER_TOP_P", gt=0, le=1, help="nucleus sampling")
    max_tokens: int = setting(1024, env="TEACHER_MAX_TOKENS", ge=1, help="answer length cap (tokens)")
    seed: int | None = setting(None, env="TEACHER_SEED", help="sampling seed, for endpoints that honour it")
    system_prompt: str | None = setting(
        None, env="TEACHER_SYSTEM_PROMPT", help="system prompt for prompts that bring none"
    )

    def __post_init__(self) -> None:
        validate(self)

    def params(self) -> dict:
        """The parameters sent with every request (the system prompt travels in the messages)."""
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            params["seed"] = self.seed
        return params


@dataclass(frozen=True)
class TeacherSettings:
    """How to reach the teacher and how to spend on it.

    ``base_url=None`` means: start the embedded simulator on loopback and mark everything it
    answers as simulated.
    """

    base_url: str | None = setting(
        None, env="TEACHER_BASE_URL", rule="http_url", help="OpenAI-compatible endpoint, ending in /v1"
    )
    api_key: str | None = setting(None, env="TEACHER_API_KEY", secret=True, help="the endpoint's key")
    model: str = setting(DEFAULT_TEACHER_MODEL, env="TEACHER_MODEL", help="the teacher `distillset run` uses")
    max_concurrency: int = setting(64, env="TEACHER_MAX_CONCURRENCY", ge=1, help="requests in flight")
    requests_per_minute: float | None = setting(None, env="TEACHER_REQUESTS_PER_MINUTE", gt=0, help="client-side limit")
    tokens_per_minute: float | None = setting(None, env="TEACHER_TOKENS_PER_MINUTE", gt=0, help="client-side limit")
    timeout_s: float = setting(120.0, env="TEACHER_TIMEOUT_S", gt=0, help="per request")
    max_retries: int = setting(6, env="TEACHER_MAX_RETRIES", ge=0, help="per request")
    price_input_per_mtok: float = setting(
        0.0, env="TEACHER_PRICE_INPUT_PER_MTOK", ge=0, help="USD per million prompt tokens"
    )
    price_output_per_mtok: float = setting(
        0.0, env="TEACHER_PRICE_OUTPUT_PER_MTOK", ge=0, help="USD per million answer tokens"
    )
    budget_tokens: int | None = setting(None, env="TEACHER_BUDGET_TOKENS", ge=0, help="per-run token cap")
    budget_usd: float | None = setting(None, env="TEACHER_BUDGET_USD", ge=0, help="per-run dollar cap")
    max_response_chars: int = setting(
        200_000, env="TEACHER_MAX_RESPONSE_CHARS", ge=1, help="a longer answer is recorded as failed, not stored"
    )
    accept_model_aliases: tuple[str, ...] = setting(
        (), env="TEACHER_ACCEPT_MODEL_ALIASES", help="model ids an endpoint may answer with besides the one asked"
    )
    share_answers_across_endpoints: bool = setting(
        True, env="TEACHER_SHARE_ANSWERS_ACROSS_ENDPOINTS", help="reuse answers of other real endpoints, same model"
    )
    # Consecutive 401/403 answers after which the stage stops: a bad key fails every request.
    max_auth_failures: int = setting(3, env="TEACHER_MAX_AUTH_FAILURES", ge=1)
    samples_per_prompt: int = setting(
        1, env="TEACHER_SAMPLES_PER_PROMPT", ge=1, le=64, help="N: answers sampled per prompt (best-of-N)"
    )
    max_answers_per_prompt: int = setting(
        1, env="DISTILLSET_MAX_ANSWERS_PER_PROMPT", ge=1, le=64, help="k: answers published per prompt at most"
    )
    pass_rate_min: float | None = setting(
        None,
        env="DISTILLSET_PASS_RATE_MIN",
        ge=0,
        le=1,
        help="keep verifiable prompts passing at least this often",
    )
    pass_rate_max: float | None = setting(
        None, env="DISTILLSET_PASS_RATE_MAX", ge=0, le=1, help="keep verifiable prompts passing at most this often"
    )
    export_reasoning: bool = setting(
        False, env="DISTILLSET_EXPORT_REASONING", help="put the teacher's reasoning back as <think>...</think>"
    )
    # How long a worker's claim on a request key holds before another worker may pay for it. One
    # request lives at most (retries + 1) x the deadline plus the backoffs between attempts (30 s
    # cap each): 7 x 120 s + 6 x 30 s = 1020 s with the defaults; 30 minutes leaves room for
    # rate-limiter waits, and costs only a 30-minute delay on the keys a killed worker had in flight.
    lease_s: float = setting(
        1800.0,
        env="TEACHER_LEASE_S",
        rule="duration",
        gt=0,
        help="a worker's claim on a request key; another worker pays for it only after it expires",
    )
    # Provider Batch API (README, "Batch mode"): about half the price, hours of latency.
    batch: bool = setting(
        False, env="TEACHER_BATCH", help="send the requests the ledger lacks through the provider's Batch API"
    )
    batch_window: str = setting(
        "24h", env="TEACHER_BATCH_WINDOW", choices=_batch_windows, help="the batches' completion window"
    )
    # OpenAI's limits are 50,000 lines and 200 MB per input file; 190 MB leaves room for the
    # multipart envelope and for providers that count megabytes in MiB or in MB.
    batch_max_requests: int = setting(
        50_000, env="TEACHER_BATCH_MAX_REQUESTS", ge=1, help="request lines per batch at most"
    )
    batch_max_bytes: int = setting(
        190_000_000, env="TEACHER_BATCH_MAX_BYTES", ge=1024, help="bytes per batch input file at most"
    )
    batch_fallback: str = setting(
        "batch",
        env="TEACHER_BATCH_FALLBACK",
        choices=_batch_fallbacks,
        help="where a failed or expired line goes, once: `batch` (a new batch) or `online`",
    )
    batch_poll_s: float = setting(
        60.0, env="TEACHER_BATCH_POLL_S", rule="duration", gt=0, help="seconds between two polls of the batches"
    )
    batch_price_factor: float = setting(
        0.5, env="TEACHER_BATCH_PRICE_FACTOR", ge=0, le=1, help="batch price as a share of the online price"
    )
    sampling: SamplingSettings = dataclasses.field(default_factory=SamplingSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accept_model_aliases", tuple(self.accept_model_aliases))
        validate(self)
        if self.batch and (self.budget_tokens is not None or self.budget_usd is not None):
            # A batch's tokens are known only once it is answered: a cap could not stop it in time.
            raise SettingsError(
                ["TEACHER_BATCH=true cannot honour TEACHER_BUDGET_TOKENS / TEACHER_BUDGET_USD yet; unset one of them"]
            )
        low, high = self.pass_rate_min, self.pass_rate_max
        if low is not None and high is not None and low > high:
            raise SettingsError([f"DISTILLSET_PASS_RATE_MIN={low} is above DISTILLSET_PASS_RATE_MAX={high}"])

    @property
    def simulated(self) -> bool:
        return self.base_url is None

    def sampling_params(self) -> dict:
        """The sampling parameters that determine an answer (part of every request hash)."""
        return self.sampling.params()

    def sample_params(self, sample_index: int) -> dict:
        """The sampling parameters of sample ``sample_index`` of a prompt (best-of-N).

        Sample 0 is the request a single-answer run sends (so its ledger entries stay valid when N
        is raised); sample i > 0 sends ``seed`` = ``TEACHER_SEED`` (or 0) + i, which makes it its
        own request, its own ledger key and, on endpoints that honour seeds, reproducible.
        """
        params = self.sampling.params()
        if sample_index > 0:
            params["seed"] = (self.sampling.seed or 0) + sample_index
        return params

    def with_overrides(self, **changes) -> TeacherSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PromptSettings:
    """Where raw prompt files come from and how they are read."""

    url: str = setting(
        DEFAULT_PROMPTS_URL,
        env="DISTILLSET_PROMPTS_URL",
        rule="location",
        help="folder or s3://bucket/prefix of prompt files",
    )
    default_license: str = setting("unknown", env="DISTILLSET_DEFAULT_LICENSE", help="license of files with no sidecar")
    max_prompt_chars: int = setting(
        100_000, env="DISTILLSET_MAX_PROMPT_CHARS", ge=1, help="longer prompts are rejected"
    )
    follow_symlinks: bool = setting(
        False,
        env="DISTILLSET_FOLLOW_SYMLINKS",
        help="read symbolic links that point outside the prompts folder (otherwise: outside_prompts_root rejects)",
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class CurationSettings:
    """Decontamination and deduplication before and after the teacher."""

    benchmarks: str | None = setting(
        None,
        env="DISTILLSET_BENCHMARKS",
        help="extra decontamination sets: path, name=path, name=path:field, comma-separated",
    )

    def __post_init__(self) -> None:
        validate(self)


def _q(default, name: str, **bounds):
    return setting(default, env=f"DISTILLSET_QUALITY_{name.upper()}", **bounds)


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the SQL quality rules (``sql/quality/*.sql`` explain each rule).

    Every field reads ``DISTILLSET_QUALITY_<FIELD NAME IN CAPITALS>``.

    Attributes:
        min_chars: an answer shorter than this (characters, trimmed) is ``too_short``.
        max_chars: an answer longer than this is ``too_long``.
        ratio_min_prompt_chars: from this prompt length on, and when the row has no reference, an
            answer under ``min_length_ratio`` times the prompt length is ``too_short``.
        min_length_ratio: see ``ratio_min_prompt_chars``.
        refusal_head_chars: a refusal phrase opening a sentence within this many first characters
            is a refusal.
        refusal_short_chars: in an answer this short, an unquoted refusal phrase anywhere is one.
        repetition_max_ratio: repeated-line or repeated 4-gram share above this is ``repetitive``.
        repetition_min_lines: fewer (long enough) lines than this: the line ratio is not judged.
        repetition_min_line_chars: shorter lines ("```", "}") are ignored by the line ratio.
        repetition_min_ngrams: fewer 4-grams than this: the n-gram ratio is not judged.
        repetition_max_tokens: only the first tokens are read for 4-grams (bounds the cost).
        loop_tail_chars: the length of the answer's tail looked for as a loop.
        loop_min_repeats: the tail repeating this many times is a looping tail.
        loop_window_chars: the tail is counted in this many last characters.
        language_min_units: answers with fewer script units (CJK characters + Latin words) are not
            judged for language.
        language_min_share: an answer whose share of the prompt's script is under this mismatches.
        numeric_tolerance: relative tolerance of the verifiable answer comparison (two plain numbers
            this close count as equal).
        length_target_chars: the least target length of ``length_grade`` (``sql/quality/length.sql``).
        length_target_ratio: the target length of ``length_grade`` is at least this times the prompt.
        wall_of_text_chars: an answer this long without a line break lowers ``format_grade``.
        disabled_rules: rule names (see ``QUALITY_RULES``) that never fail a row; from the
            environment as a comma-separated list.
    """

    min_chars: int = _q(2, "min_chars", ge=0)
    max_chars: int = _q(32_000, "max_chars", ge=0)
    ratio_min_prompt_chars: int = _q(1_000, "ratio_min_prompt_chars", ge=0)
    min_length_ratio: float = _q(0.05, "min_length_ratio", ge=0, le=1)
    refusal_head_chars: int = _q(200, "refusal_head_chars", ge=1)
    refusal_short_chars: int = _q(300, "refusal_short_chars", ge=0)
    repetition_max_ratio: float = _q(0.5, "repetition_max_ratio", ge=0, le=1)
    repetition_min_lines: int = _q(4, "repetition_min_lines", ge=0)
    repetition_min_line_chars: int = _q(8, "repetition_min_line_chars", ge=0)
    repetition_min_ngrams: int = _q(20, "repetition_min_ngrams", ge=1)
    repetition_max_tokens: int = _q(4_000, "repetition_max_tokens", ge=1)
    loop_tail_chars: int = _q(50, "loop_tail_chars", ge=1)
    loop_min_repeats: int = _q(3, "loop_min_repeats", ge=0)
    loop_window_chars: int = _q(1_000, "loop_window_chars", ge=0)
    language_min_units: int = _q(10, "language_min_units", ge=0)
    language_min_share: float = _q(0.3, "language_min_share", ge=0, le=1)
    numeric_tolerance: float = _q(1e-6, "numeric_tolerance", ge=0)
    length_target_chars: int = _q(200, "length_target_chars", ge=1)
    length_target_ratio: float = _q(0.5, "length_target_ratio", ge=0)
    wall_of_text_chars: int = _q(1_500, "wall_of_text_chars", ge=1)
    disabled_rules: tuple[str, ...] = _q((), "disabled_rules", choices=_quality_rules)

    def __post_init__(self) -> None:
        object.__setattr__(self, "disabled_rules", tuple(self.disabled_rules))
        validate(self)

    def sql_parameters(self) -> dict:
        """The thresholds as named SQL parameters (``$min_chars``...)."""
        params = dataclasses.asdict(self)
        params["disabled_rules"] = list(self.disabled_rules)
        return params


@dataclass(frozen=True)
class QualitySettings:
    """The quality rules' thresholds and the user's extra refusal phrases."""

    thresholds: QualityThresholds = dataclasses.field(default_factory=QualityThresholds)
    refusal_patterns: Path | None = setting(
        None,
        env="DISTILLSET_REFUSAL_PATTERNS",
        help="CSV of extra refusal phrases (columns of data/quality/refusal_patterns.csv)",
    )

    def __post_init__(self) -> None:
        validate(self)


def _g(default, name: str, **bounds):
    return setting(default, env=f"DISTILLSET_GATE_{name.upper()}", **bounds)


@dataclass(frozen=True)
class QualityGates:
    """Limits a scored generation set must meet before it may become a training set.

    Every field reads ``DISTILLSET_GATE_<FIELD NAME IN CAPITALS>``.

    Attributes:
        max_refusal_rate: share of refusals (and deflections) allowed; one refusal in twenty
            already teaches a student to refuse.
        max_truncation_rate: share of answers cut by the token limit allowed.
        min_verifiable_accuracy: share of correct answers among the checked verifiable rows
            (correct / (correct + wrong + no_final_answer): an answer with no final answer is not
            correct).
        min_verifiable_rows: the accuracy gate only judges from this many such rows on; below, a
            few rows would make it flip on noise.
        min_pass_rate: share of rows passing every rule; under it the teacher or the prompts are
            broken, not a few answers.
    """

    max_refusal_rate: float = _g(0.05, "max_refusal_rate", ge=0, le=1)
    max_truncation_rate: float = _g(0.05, "max_truncation_rate", ge=0, le=1)
    min_verifiable_accuracy: float = _g(0.5, "min_verifiable_accuracy", ge=0, le=1)
    min_verifiable_rows: int = _g(10, "min_verifiable_rows", ge=0)
    min_pass_rate: float = _g(0.5, "min_pass_rate", ge=0, le=1)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class LicensePolicy:
    """Which license findings block publication (the others become warnings)."""

    block_non_commercial: bool = setting(False, env="DISTILLSET_LICENSE_POLICY_BLOCK_NON_COMMERCIAL")
    block_teacher_forbids_training: bool = setting(True, env="DISTILLSET_LICENSE_POLICY_BLOCK_TEACHER_FORBIDS_TRAINING")
    block_unknown: bool = setting(False, env="DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class PublishSettings:
    """Where and how training set versions are published."""

    storage_url: str | None = setting(
        None,
        env="DISTILLSET_STORAGE_URL",
        rule="location",
        help="folder or s3://bucket/prefix (default $DISTILLSET_HOME/training_sets)",
    )
    training_set_name: str | None = setting(None, env="DISTILLSET_TRAINING_SET_NAME", check=_training_set_name)
    validation_fraction: float = setting(0.05, env="DISTILLSET_VALIDATION_FRACTION", ge=0, le=1)
    export_formats: tuple[str, ...] = setting(("openai",), env="DISTILLSET_EXPORT_FORMATS", choices=_export_formats)
    stale_after_s: float = setting(6 * 3600.0, env="DISTILLSET_PUBLISH_STALE_AFTER_S", rule="duration", gt=0)
    training_set_max_age_s: float = setting(
        26 * 3600.0,
        env="DISTILLSET_TRAINING_SET_MAX_AGE",
        rule="duration",
        ge=0,
        help="the UI marks a training_set partition stale when older (0: no freshness policy)",
    )
    allow_partial: bool = setting(
        False,
        env="DISTILLSET_ALLOW_PARTIAL",
        help="after a budget stop, publish a version smaller than LATEST anyway (`distillset run --allow-partial`)",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "export_formats", tuple(self.export_formats))
        validate(self)

    def set_name(self, teacher_model: str) -> str:
        """The training set's name: configured, else derived from the teacher model id."""
        if self.training_set_name:
            return self.training_set_name
        slug = teacher_model.split("/")[-1].lower().replace(".", "-").replace("_", "-")
        return f"distill-{slug}"


@dataclass(frozen=True)
class RefreshSettings:
    """The nightly schedule and the new-release sensor."""

    nightly_cron: str = setting(DEFAULT_NIGHTLY_CRON, env="DISTILLSET_NIGHTLY_CRON", help="cron string, UTC")
    release_pattern: str = setting(DEFAULT_RELEASE_PATTERN, env="DISTILLSET_RELEASE_PATTERN", rule="regex")
    hub_url: str | None = setting(None, env="DISTILLSET_RELEASE_HUB_URL", rule="http_url")
    hub_author: str = setting(DEFAULT_HUB_AUTHOR, env="DISTILLSET_RELEASE_HUB_AUTHOR")
    # Dagster's daemon evaluates sensors every 30 s at most; a shorter interval would only mislead.
    sensor_interval_s: int = setting(3600, env="DISTILLSET_RELEASE_SENSOR_INTERVAL_S", ge=30)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class JudgeSettings:
    """Which model judges, where, and how its judgment weighs in the final score.

    ``model``, ``base_url`` and ``api_key`` left unset take the teacher's (see :meth:`for_teacher`).
    """

    enabled: bool = setting(False, env="DISTILLSET_JUDGE_ENABLED", help="run the judge stage in the default flow")
    model: str | None = setting(None, env="DISTILLSET_JUDGE_MODEL", help="default: the teacher model")
    base_url: str | None = setting(
        None, env="DISTILLSET_JUDGE_BASE_URL", rule="http_url", help="default: TEACHER_BASE_URL"
    )
    api_key: str | None = setting(None, env="DISTILLSET_JUDGE_API_KEY", secret=True)
    weight: float = setting(0.5, env="DISTILLSET_JUDGE_WEIGHT", ge=0, le=1)
    min_score: float | None = setting(None, env="DISTILLSET_JUDGE_MIN_SCORE", ge=JUDGE_MIN_SCORE, le=JUDGE_MAX_SCORE)
    # A score and one or two sentences fit easily; the cap bounds what a chatty judge costs.
    max_tokens: int = setting(256, env="DISTILLSET_JUDGE_MAX_TOKENS", ge=1)

    def __post_init__(self) -> None:
        validate(self)

    def for_teacher(self, teacher: TeacherSettings) -> JudgeSettings:
        """The judge of ``teacher``: its model and endpoint unless set here.

        The teacher's key is reused only with the teacher's endpoint: a judge on another endpoint
        gets its own key or none, so the teacher's key is never sent to a host it was not issued for.
        """
        own_endpoint = self.base_url is not None and self.base_url != teacher.base_url
        return dataclasses.replace(
            self,
            model=self.model or teacher.model,
            base_url=self.base_url if self.base_url is not None else teacher.base_url,
            api_key=self.api_key if self.api_key is not None else (None if own_endpoint else teacher.api_key),
        )


@dataclass(frozen=True)
class SimulatorSettings:
    """The embedded teacher simulator (serves when ``TEACHER_BASE_URL`` is unset)."""

    latency_ms: float = setting(0.0, env="DISTILLSET_SIMULATOR_LATENCY_MS", ge=0, help="latency per answer")
    accuracy: float = setting(
        0.85, env="DISTILLSET_SIMULATOR_ACCURACY", ge=0, le=1, help="share of word problems answered right"
    )
    model_accuracy: str | None = setting(
        None,
        env="DISTILLSET_SIMULATOR_MODEL_ACCURACY",
        check=_model_accuracy,
        help="model=accuracy pairs, e.g. model-a=0.9,model-b=0.55, over DISTILLSET_SIMULATOR_ACCURACY",
    )

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class ScorecardSettings:
    """Teacher scorecards and the release gate (README, "Scorecards"; docs/operating.md)."""

    gate: bool = setting(
        True, env="DISTILLSET_SCORECARD_GATE", help="stop a sensor-launched run whose new release is worse"
    )
    margin: float = setting(
        0.02,
        env="DISTILLSET_SCORECARD_MARGIN",
        ge=0,
        le=1,
        help="absolute accuracy a release may lose, beyond its interval",
    )
    benchmarks: tuple[str, ...] = setting(
        ("gsm8k", "ifeval"),
        env="DISTILLSET_SCORECARD_BENCHMARKS",
        choices=_scorecard_benchmarks,
        help="the benchmarks teacher_scorecard measures and the gate compares",
    )
    limit: int = setting(
        200,
        env="DISTILLSET_SCORECARD_LIMIT",
        ge=0,
        help="questions per benchmark teacher_scorecard asks (file order); 0 measures nothing and gates nothing",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "benchmarks", tuple(self.benchmarks))
        validate(self)


def _default_home() -> Path:
    return (Path.cwd() / ".distillset").resolve()


@dataclass(frozen=True)
class Settings:
    """Everything the flow needs (README, "Configuration")."""

    home: Path = setting(
        default_factory=_default_home, env="DISTILLSET_HOME", help="catalog, ledger, caches, Dagster home"
    )
    dagster_home: Path | None = setting(None, env="DAGSTER_HOME", help="default $DISTILLSET_HOME/dagster")
    ledger_url: str | None = setting(
        None,
        env="DISTILLSET_LEDGER_URL",
        check=check_ledger_url,
        secret=True,
        help="the teacher ledger, shared by every run that names it: a path, sqlite:///path or "
        "postgresql://user@host:port/database (workers on several machines)",
    )
    catalog_url: str | None = setting(
        None,
        env="DISTILLSET_CATALOG_URL",
        check=check_catalog_url,
        secret=True,
        help="the catalog later stages read, shared by workers on several machines: "
        "ducklake:postgres:postgresql://user@host:port/database (DuckLake, metadata in PostgreSQL); "
        "default $DISTILLSET_HOME/catalog.duckdb",
    )
    catalog_data_path: str | None = setting(
        None,
        env="DISTILLSET_CATALOG_DATA_PATH",
        check=check_catalog_data_path,
        help="where a DuckLake catalog keeps its Parquet files: s3://bucket/prefix/ or a folder every "
        "worker mounts (required with DISTILLSET_CATALOG_URL)",
    )
    s3_endpoint_url: str | None = setting(
        None, env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), rule="http_url", help="S3-compatible store"
    )
    chunk_rows: int = setting(
        50_000,
        env="DISTILLSET_CHUNK_ROWS",
        ge=1,
        help=(
            "rows a stage holds at once while it streams prompts, the pool, teacher rows, deduplicated "
            "generations, quality scores, judgments and training examples through the catalog"
        ),
    )
    teacher: TeacherSettings = dataclasses.field(default_factory=TeacherSettings)
    prompts: PromptSettings = dataclasses.field(default_factory=PromptSettings)
    curation: CurationSettings = dataclasses.field(default_factory=CurationSettings)
    quality: QualitySettings = dataclasses.field(default_factory=QualitySettings)
    gates: QualityGates = dataclasses.field(default_factory=QualityGates)
    licenses: LicensePolicy = dataclasses.field(default_factory=LicensePolicy)
    publish: PublishSettings = dataclasses.field(default_factory=PublishSettings)
    refresh: RefreshSettings = dataclasses.field(default_factory=RefreshSettings)
    judge: JudgeSettings = dataclasses.field(default_factory=JudgeSettings)
    simulator: SimulatorSettings = dataclasses.field(default_factory=SimulatorSettings)
    scorecards: ScorecardSettings = dataclasses.field(default_factory=ScorecardSettings)
    executor: ExecutorSettings = dataclasses.field(default_factory=ExecutorSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser().resolve())
        validate(self)
        if is_ducklake_url(self.catalog_url) and not self.catalog_data_path:
            where = "s3://bucket/prefix/ or a folder"
            raise SettingsError([f"DISTILLSET_CATALOG_DATA_PATH must be set with DISTILLSET_CATALOG_URL: {where}"])
        if self.executor.shards > 1 and self.teacher.batch:
            # The batch sensor launches one teacher's run, not its shards' (docs/cluster.md).
            raise SettingsError(
                [
                    f"DISTILLSET_SHARDS={self.executor.shards} with TEACHER_BATCH=true is not supported yet: "
                    "set one of them"
                ]
            )

    @property
    def catalog_path(self) -> Path:
        """The embedded catalog file, ``$DISTILLSET_HOME/catalog.duckdb`` (see ``catalog_location``)."""
        return self.home / CATALOG_FILE

    @property
    def catalog_location(self):
        """What ``distillset.catalog`` opens: the DuckLake of ``DISTILLSET_CATALOG_URL`` (a
        ``catalog.Lake``), or the file of ``catalog_path``."""
        from distillset.catalog_lake import catalog_location  # duckdb stays unimported for settings alone

        return catalog_location(
            self.catalog_url, self.catalog_data_path, self.home, s3_endpoint_url=self.s3_endpoint_url
        )

    @property
    def ledger_path(self) -> Path:
        """``DISTILLSET_LEDGER_URL``'s file, or ``$DISTILLSET_HOME/ledger.sqlite``."""
        return ledger_path(self.ledger_url, self.home)

    @property
    def ledger_location(self) -> Path | str:
        """What ``Ledger`` opens: the ``postgresql://`` URL, or the SQLite file of ``ledger_path``."""
        return ledger_location(self.ledger_url, self.home)

    @property
    def scorecards_path(self) -> Path:
        return self.home / SCORECARDS_FILE

    @property
    def cache_dir(self) -> Path:
        return self.home / CACHE_DIR

    @property
    def storage_url(self) -> str:
        """``DISTILLSET_STORAGE_URL``, or ``$DISTILLSET_HOME/training_sets``."""
        return self.publish.storage_url or str(self.home / TRAINING_SETS_DIR)

    @property
    def dagster_home_path(self) -> Path:
        """``DAGSTER_HOME``, or ``$DISTILLSET_HOME/dagster``."""
        return Path(self.dagster_home or self.home / DAGSTER_DIR).expanduser().resolve()

    def storage_options(self) -> dict:
        """fsspec options for S3 (the endpoint only; credentials stay with botocore's own chain)."""
        return {"endpoint_url": self.s3_endpoint_url} if self.s3_endpoint_url else {}
