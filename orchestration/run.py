"""`distillset run`: the whole flow for one teacher, in DISTILLSET_HOME's Dagster instance."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distillset.settings import Settings

TEACHER_PARTITIONS = "teacher_models"
# The instance configuration (pool limits, run queue) copied into a new DAGSTER_HOME. It lives here,
# not at the project root, where `dagster dev` would warn that it is ignored.
INSTANCE_CONFIG = Path(__file__).parent / "dagster.yaml"


def prepare_dagster_home(home: Path) -> Path:
    """Create the Dagster home (``Settings.dagster_home_path``) with the project's ``dagster.yaml``.

    A persistent home keeps run history, partitions and asset metadata between runs, so the UI
    (``make ui``) shows what the command line did.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_CONFIG, config)
    return home


@dataclass
class StageLine:
    asset: str
    rows: int | None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    success: bool
    teacher_model: str
    run_id: str
    stages: list[StageLine]
    training_set: dict[str, object]
    errors: list[str]


_NOTE_KEYS = {
    "raw_prompts": [("rejected_rows", "rejected")],
    "prompt_pool": [("dropped_rows", "dropped")],
    "deduplicated_generations": [("dropped_rows", "dropped")],
    "quality_scores": [("failed_rows", "failed quality rules")],
}


def _value(entry) -> object:
    return getattr(entry, "value", entry)


def _root_cause(error) -> str:
    """The innermost error's message: Dagster wraps the stage's own exception in its own."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def summarize(result, teacher_model: str) -> RunSummary:
    """Turn an in-process run result into the lines `distillset run` prints."""
    stages: list[StageLine] = []
    training_set: dict[str, object] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        asset = materialization.asset_key.to_user_string()
        metadata = {k: _value(v) for k, v in materialization.metadata.items()}
        line = StageLine(asset=asset, rows=metadata.get("dagster/row_count"))
        for key, label in _NOTE_KEYS.get(asset, []):
            if metadata.get(key):
                line.notes.append(f"{metadata[key]} {label}")
        if asset == "teacher_generations":
            paid = metadata.get("teacher/requests_paid")
            hits = metadata.get("teacher/cache_hits")
            if paid is not None:
                line.notes.append(f"{paid} teacher calls paid, {hits or 0} answers reused from the ledger")
            if metadata.get("failed_rows"):
                line.notes.append(f"{metadata['failed_rows']} failed")
            if metadata.get("simulated"):
                line.notes.append("SIMULATED teacher")
        if asset == "judge_scores" and metadata.get("judge_enabled") is False:
            line.notes.append("judge off (DISTILLSET_JUDGE_ENABLED): nothing judged, nothing paid")
        elif asset == "judge_scores" and metadata.get("judge/requests_paid") is not None:
            line.notes.append(
                f"{metadata['judge/requests_paid']} judge calls paid, {metadata.get('judge/cache_hits') or 0} reused"
            )
        if asset == "training_set":
            training_set = metadata
        stages.append(line)
    errors = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            errors.append(f"{event.step_key}: {_root_cause(event.event_specific_data.error)}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            details = ", ".join(f"{k}={_value(v)}" for k, v in evaluation.metadata.items())
            errors.append(
                f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed ({details})"
            )
    return RunSummary(
        success=result.success,
        teacher_model=teacher_model,
        run_id=result.run_id,
        stages=stages,
        training_set=training_set,
        errors=errors,
    )


def format_summary(summary: RunSummary) -> str:
    lines = [f"run {summary.run_id} for teacher {summary.teacher_model}:"]
    for stage in summary.stages:
        rows = "" if stage.rows is None else f"{stage.rows:>7} rows"
        notes = f"  ({'; '.join(stage.notes)})" if stage.notes else ""
        lines.append(f"  {stage.asset:<26}{rows}{notes}")
    ts = summary.training_set
    if ts:
        verb = "published new version" if ts.get("published_new_version") else "unchanged: no new version; latest is"
        lines.append(f"{verb} {ts.get('training_set_name')} {ts.get('version')}: {ts.get('path')}")
    for error in summary.errors:
        lines.append(f"ERROR {error}")
    if not summary.success:
        lines.append("the run failed; see the errors above, or the run in the Dagster UI (make ui)")
    return "\n".join(lines)


def run_flow(
    settings: Settings, teacher_model: str | None = None, *, echo: Callable[[str], None] = print
) -> RunSummary:
    """Register the teacher partition if new, then materialize the whole flow (``distill_job``) for it."""
    import dagster as dg

    from orchestration.definitions import build_definitions

    model = teacher_model or settings.teacher.model
    dagster_home = prepare_dagster_home(settings.dagster_home_path)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    if model not in instance.get_dynamic_partitions(TEACHER_PARTITIONS):
        instance.add_dynamic_partitions(TEACHER_PARTITIONS, [model])
        echo(f"registered teacher partition {model}")
    echo(f"distilling with teacher {model}; DISTILLSET_HOME={settings.home}; DAGSTER_HOME={dagster_home}")
    job = defs.resolve_job_def("distill_job")
    result = job.execute_in_process(
        instance=instance,
        partition_key=model,
        raise_on_error=False,
        tags={"distillset/launched_by": "cli"},
        # INFO shows the stages' own progress lines, not every Dagster engine event.
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    return summarize(result, model)
