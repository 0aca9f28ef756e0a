"""Scorecards: every teacher release measured before it is paid to distill, and every student after.

``teacher_scorecard`` (one partition per teacher, upstream of ``teacher_generations``) asks the
release the held-out questions (``distillset.scorecards``) and records its scorecard; its blocking
check ``teacher_scorecard_release_gate`` stops a run the release sensor launched when the release is
worse than the incumbent (``distillset.scorecards.gate``), before anything is paid for generation.
``student_scorecards`` records the students evaluated on the partition's training set versions.
"""

import dagster as dg

from assets.constants import LAUNCHED_BY_TAG, OWNERS, RELEASE_SENSOR
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource, ScorecardResource, TeacherResource, TrainingSetStorageResource
from assets.served import require_model_served
from assets.training_set import training_set
from distillset.scorecards.gate import blocking_reason, compare
from distillset.scorecards.run import evaluate_model
from distillset.scorecards.store import STUDENT, TEACHER
from distillset.teacher.retry import EndpointRefusedKeyError


@dg.asset(
    partitions_def=teacher_partitions,
    group_name="teacher",
    kinds={"openai", "sqlite"},
    owners=OWNERS,
    description=(
        "The teacher release's scorecard on the held-out benchmarks (DISTILLSET_SCORECARD_BENCHMARKS: the GSM8K "
        "test and IFEval files decontamination protects, first DISTILLSET_SCORECARD_LIMIT questions), measured "
        "before paying to distill it: accuracy with a 95% interval per benchmark, through the ledger at "
        "temperature 0 (a rerun pays nothing), recorded in $DISTILLSET_HOME/scorecards.sqlite."
    ),
)
def teacher_scorecard(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    teacher: TeacherResource,
    scorecards: ScorecardResource,
) -> dg.MaterializeResult:
    model = context.partition_key
    if scorecards.limit == 0:
        context.log.info("teacher_scorecard: DISTILLSET_SCORECARD_LIMIT=0, nothing measured")
        return dg.MaterializeResult(
            metadata={"teacher_model": dg.MetadataValue.text(model), "comparison": "not measured (limit 0)"}
        )
    store = scorecards.store(catalog_db)
    settings = teacher.settings_for(model)
    if not settings.simulated:  # the embedded simulator serves the model it is started for
        with teacher.endpoint(settings) as endpoint:
            require_model_served(context, endpoint, settings)
    try:
        scores = evaluate_model(
            model,
            scorecards.benchmark_list(),
            settings,
            catalog_db.ledger(),
            teacher.endpoint,
            limit=scorecards.limit,
            run_id=context.run_id,
            on_progress=lambda benchmark, progress: context.log.info(f"{benchmark}: {progress}"),
        )
    except EndpointRefusedKeyError as exc:
        raise dg.Failure(description=str(exc)) from None
    comparisons = compare(scores, store, benchmarks=scorecards.benchmark_list(), margin=scorecards.margin)
    for score in scores:
        store.record(score, kind=TEACHER, run_id=context.run_id)
    for comparison in comparisons:
        context.log.info(comparison.sentence())
    metadata: dict = {"teacher_model": dg.MetadataValue.text(model)}
    for score in scores:
        metadata[f"{score.benchmark}/accuracy"] = dg.MetadataValue.float(score.accuracy)
        metadata[f"{score.benchmark}/ci_low"] = dg.MetadataValue.float(score.ci_low)
        metadata[f"{score.benchmark}/ci_high"] = dg.MetadataValue.float(score.ci_high)
        metadata[f"{score.benchmark}/n"] = dg.MetadataValue.int(score.n)
        for name, value in score.metrics.items():
            metadata[f"{score.benchmark}/{name}"] = dg.MetadataValue.float(value)
    metadata["comparison"] = dg.MetadataValue.text("; ".join(c.sentence() for c in comparisons) or "no gated benchmark")
    metadata["requests_paid"] = dg.MetadataValue.int(sum(s.requests_paid for s in scores))
    metadata["cache_hits"] = dg.MetadataValue.int(sum(s.cache_hits for s in scores))
    metadata["simulated"] = dg.MetadataValue.bool(any(s.simulated for s in scores))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=teacher_scorecard,
    blocking=True,
    description=(
        "The release gate: in a run the new-release sensor launched, a release worse than the incumbent (the best "
        "teacher scorecard so far) by more than DISTILLSET_SCORECARD_MARGIN beyond its 95% interval stops the run "
        "before generation is paid for (DISTILLSET_SCORECARD_GATE=false turns it off); other runs only show the "
        "comparison."
    ),
)
def teacher_scorecard_release_gate(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, scorecards: ScorecardResource
) -> dg.AssetCheckResult:
    model = run_teacher_partition(context)
    store = scorecards.store(catalog_db)
    own = store.latest(model=model, kind=TEACHER)
    comparisons = compare(own, store, benchmarks=scorecards.benchmark_list(), margin=scorecards.margin)
    reason = blocking_reason(comparisons)
    from_sensor = context.run.tags.get(LAUNCHED_BY_TAG) == RELEASE_SENSOR
    metadata = {"comparison": "; ".join(c.sentence() for c in comparisons) or "no gated benchmark"}
    if reason is None:
        return dg.AssetCheckResult(passed=True, metadata=metadata)
    if not (scorecards.gate and from_sensor):
        why = "the gate is off (DISTILLSET_SCORECARD_GATE=false)" if not scorecards.gate else "not a sensor run"
        context.log.warning(f"{reason} (not blocked: {why})")
        return dg.AssetCheckResult(passed=True, metadata={**metadata, "not_blocked": why}, description=reason)
    return dg.AssetCheckResult(passed=False, metadata={"reason": reason}, description=reason)


@dg.asset(
    deps=[training_set],
    partitions_def=teacher_partitions,
    group_name="training_set",
    kinds={"sqlite"},
    owners=OWNERS,
    description=(
        "The students trained on this teacher's training set versions and their scorecards (recorded by "
        "`distillset evaluate --model M --student-of NAME:vNNNN`); each benchmark's accuracy on the newest "
        "evaluated version is numeric metadata, so the UI plots it over versions."
    ),
)
def student_scorecards(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    scorecards: ScorecardResource,
    training_storage: TrainingSetStorageResource,
) -> dg.MaterializeResult:
    name = training_storage.set_name(context.partition_key)
    students = scorecards.store(catalog_db).latest(kind=STUDENT, training_set=name)
    metadata: dict = {"training_set_name": dg.MetadataValue.text(name), "students": dg.MetadataValue.int(len(students))}
    if students:
        newest = max(c.student_of for c in students)
        metadata["version"] = dg.MetadataValue.text(newest.rsplit(":", 1)[1])
        for card in (c for c in students if c.student_of == newest):
            metadata[f"{card.benchmark}/accuracy"] = dg.MetadataValue.float(card.accuracy)
            metadata[f"{card.benchmark}/student"] = dg.MetadataValue.text(card.model)
        table = ["| version | student | benchmark | n | accuracy | 95% interval |", "|---|---|---|---|---|---|"]
        table += [
            f"| {c.student_of.rsplit(':', 1)[1]} | `{c.model}` | {c.benchmark} | {c.n} | {c.accuracy:.3f} | "
            f"{c.ci_low:.3f}-{c.ci_high:.3f} |"
            for c in sorted(students, key=lambda c: (c.student_of, c.model, c.benchmark))
        ]
        metadata["scorecards"] = dg.MetadataValue.md("\n".join(table))
    return dg.MaterializeResult(metadata=metadata)


scorecard_assets = [teacher_scorecard, student_scorecards]
scorecard_checks = [teacher_scorecard_release_gate]
