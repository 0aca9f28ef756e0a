"""What `distillset run` prints at the end: one line per stage, the version, warnings and errors."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    warnings: list[str] = field(default_factory=list)
    exit_code: int | None = None
    """Set when the run did not end by itself (a signal, a wait that gave up)."""
    stopped_because: str | None = None
    budget_stop: str | None = None
    """The teacher stage's account when its budget ran out (the run then exits with ``BUDGET_EXIT_CODE``)."""
    runs: list[tuple[str, str, str]] = field(default_factory=list)
    """``(job, partition, run id)`` of every run when the flow was several (DISTILLSET_SHARDS > 1)."""

    def final_exit_code(self) -> int:
        """What `distillset run` exits with: a stop's own code, else 4 after a budget stop, else 0 or 1."""
        if self.exit_code is not None:
            return self.exit_code
        if self.budget_stop:
            return BUDGET_EXIT_CODE
        return 0 if self.success else 1


BUDGET_EXIT_CODE = 4


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


def summarize(events: list, teacher_model: str, run_id: str, success: bool) -> RunSummary:
    """Turn a run's Dagster events (from the instance's event log) into the lines `distillset run` prints."""
    import dagster as dg

    stages: list[StageLine] = []
    training_set: dict[str, object] = {}
    warnings: list[str] = []
    budget_stop = None
    shard_lines: list[tuple[StageLine, dict]] = []
    for event in events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.event_specific_data.materialization
        asset = materialization.asset_key.to_user_string()
        metadata = {k: _value(v) for k, v in materialization.metadata.items()}
        line = StageLine(asset=asset, rows=metadata.get("dagster/row_count"))
        for key, label in _NOTE_KEYS.get(asset, []):
            if metadata.get(key):
                line.notes.append(f"{metadata[key]} {label}")
        if asset == "teacher_generations":
            if metadata.get("shard"):
                line.notes.append(f"shard {metadata['shard']}")
                shard_lines.append((line, metadata))
            if metadata.get("teacher/account"):
                line.notes.append(str(metadata["teacher/account"]))
            if metadata.get("teacher/budget_exhausted"):
                budget_stop = str(metadata.get("teacher/budget_message") or "budget exhausted")
            if metadata.get("simulated"):
                line.notes.append("SIMULATED teacher")
        if asset == "judge_scores" and metadata.get("judge_enabled") is False:
            line.notes.append("judge off (DISTILLSET_JUDGE_ENABLED): nothing judged, nothing paid")
        elif asset == "judge_scores" and metadata.get("judge/requests_paid") is not None:
            line.notes.append(
                f"{metadata['judge/requests_paid']} judge calls paid, {metadata.get('judge/cache_hits') or 0} reused"
            )
        if asset == "teacher_scorecard" and metadata.get("comparison"):
            line.notes.append(f"scorecard {metadata['comparison']}")
        if asset == "training_set":
            training_set = metadata
        stages.append(line)
    if len(shard_lines) > 1:
        # The shards' figures added up, after the last shard's line.
        paid = sum(int(metadata.get("teacher/requests_paid") or 0) for _, metadata in shard_lines)
        total = StageLine(
            asset="teacher_generations",
            rows=sum(int(line.rows or 0) for line, _ in shard_lines),
            notes=[f"all {len(shard_lines)} shards; {paid} calls paid"],
        )
        stages.insert(stages.index(shard_lines[-1][0]) + 1, total)
    errors = []
    for event in events:
        if event.event_type_value == "STEP_FAILURE":
            errors.append(f"{event.step_key}: {_root_cause(event.event_specific_data.error)}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.passed:
                continue
            details = ", ".join(f"{k}={_value(v)}" for k, v in evaluation.metadata.items())
            line = f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed ({details})"
            # Only a blocking check stops the run, so only its failure is an error; any other warns
            # (older events carry no blocking flag: their severity decides).
            blocking = evaluation.blocking
            if blocking is None:
                blocking = evaluation.severity != dg.AssetCheckSeverity.WARN
            (errors if blocking else warnings).append(line)
    return RunSummary(
        success=success,
        teacher_model=teacher_model,
        run_id=run_id,
        stages=stages,
        training_set=training_set,
        errors=errors,
        warnings=warnings,
        budget_stop=budget_stop,
    )


def format_summary(summary: RunSummary) -> str:
    if summary.runs:
        lines = [f"{len(summary.runs)} runs for teacher {summary.teacher_model}:"]
        lines += [f"  {job:<26}{partition}  run {run_id}" for job, partition, run_id in summary.runs]
    else:
        lines = [f"run {summary.run_id} for teacher {summary.teacher_model}:"]
    for stage in summary.stages:
        rows = "" if stage.rows is None else f"{stage.rows:>7} rows"
        notes = f"  ({'; '.join(stage.notes)})" if stage.notes else ""
        lines.append(f"  {stage.asset:<26}{rows}{notes}")
    ts = summary.training_set
    if ts:
        verb = "published new version" if ts.get("published_new_version") else "unchanged: no new version; latest is"
        same = f" (same content as {ts['same_content_as']})" if ts.get("same_content_as") else ""
        lines.append(f"{verb} {ts.get('training_set_name')} {ts.get('version')}{same}: {ts.get('path')}")
        if ts.get("simulated_rows") and ts.get("real_rows"):
            lines.append(f"WARNING mixed version: {ts['simulated_rows']} simulated and {ts['real_rows']} real answers")
    if summary.budget_stop:
        lines.append(f"BUDGET {summary.budget_stop}")
    for warning in summary.warnings:
        lines.append(f"WARNING {warning}")
    for error in summary.errors:
        lines.append(f"ERROR {error}")
    if summary.stopped_because:
        lines.append(f"STOPPED {summary.stopped_because}")
    elif not summary.success:
        lines.append("the run failed; see the errors above, or the run in the Dagster UI (make ui)")
    return "\n".join(lines)
