"""``teacher_batch_sensor``: provider batches finished, so the run that ingests them starts.

In batch mode (``TEACHER_BATCH=true``) a Dagster run of ``teacher_generations`` submits its batches
and ends with them pending (a run must not sit for hours holding a run slot). Each tick reads the
ledger's open batches, asks the provider about each (``batches.retrieve``), and for every teacher
whose open batches are all finished requests a run of ``distill_job`` for its partition: that run
ingests the answers, submits the next round if there is one (a later turn, a resubmission, another
best-of-N round) and, once nothing is pending, goes on through the flow to a published version.

The run key names the batches it is for, so a repeated tick never launches the same run twice. The
endpoint and its key come from the ``teacher`` resource (``dg.EnvVar``); the key goes to the SDK
only, never into a skip reason or the log.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
from openai import OpenAIError

from assets.constants import LAUNCHED_BY_TAG
from assets.resources import CatalogResource, TeacherResource
from distillset.teacher.batch.poll import open_batches_by_model
from distillset.teacher.batch.run import batch_client
from distillset.teacher.batch.store import BatchStore
from distillset.teacher.endpoints import TeacherEndpoint
from orchestration.jobs import distill_job

BATCH_SENSOR_NAME = "teacher_batch_sensor"


def run_key_for(model: str, tokens: tuple[str, ...]) -> str:
    """One run per set of finished batches of one teacher."""
    digest = hashlib.sha256("\n".join(sorted(tokens)).encode()).hexdigest()[:16]
    return f"batch:{model}:{digest}"


def poll_batches(
    context: dg.SensorEvaluationContext, teacher: TeacherResource, catalog_db: CatalogResource
) -> dg.SensorResult | dg.SkipReason:
    """One tick: which teachers' batches are all finished, and a run for each."""
    if not teacher.base_url:
        return dg.SkipReason(
            "no TEACHER_BASE_URL: batches only exist at a real endpoint (the embedded simulator's end with their step)"
        )
    location = catalog_db.ledger_location
    if isinstance(location, Path) and not location.exists():  # a PostgreSQL ledger is always there
        return dg.SkipReason("no ledger yet: nothing was submitted")
    endpoint = TeacherEndpoint(base_url=teacher.base_url, api_key=teacher.api_key or None, simulated=False)
    store = BatchStore(catalog_db.ledger())
    try:
        summaries = open_batches_by_model(batch_client(endpoint), store)
    except OpenAIError as exc:
        return dg.SkipReason(f"could not poll the provider's batches, will retry next tick: {type(exc).__name__}")
    if not summaries:
        return dg.SkipReason("no open provider batches")
    ready = [summary for summary in summaries if summary.ready]
    waiting = ", ".join(f"{s.model}: {s.finished}/{len(s.tokens)} finished" for s in summaries if not s.ready)
    if not ready:
        return dg.SkipReason(f"batches still running ({waiting})")
    registered = set(context.instance.get_dynamic_partitions("teacher_models"))
    requests = [
        dg.RunRequest(
            partition_key=summary.model,
            run_key=run_key_for(summary.model, summary.tokens),
            tags={LAUNCHED_BY_TAG: BATCH_SENSOR_NAME},
        )
        for summary in ready
        if summary.model in registered
    ]
    context.log.info(
        f"batches finished for {', '.join(s.model for s in ready)}" + (f"; waiting: {waiting}" if waiting else "")
    )
    return dg.SensorResult(run_requests=requests)


def build_batch_sensor(poll_s: float) -> dg.SensorDefinition:
    """The batch sensor, ticking every ``poll_s`` seconds (``TEACHER_BATCH_POLL_S``, at least 30)."""

    @dg.sensor(
        name=BATCH_SENSOR_NAME,
        job=distill_job,
        minimum_interval_seconds=max(30, int(poll_s)),
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Batch mode (TEACHER_BATCH=true): polls the provider batches the ledger has open; when a teacher's "
            "batches are all finished, launches distill_job for its partition, which ingests the answers and "
            "continues the flow (or submits the next round). Stopped until you turn it on."
        ),
    )
    def teacher_batch_sensor(
        context: dg.SensorEvaluationContext, teacher: TeacherResource, catalog_db: CatalogResource
    ):
        return poll_batches(context, teacher, catalog_db)

    return teacher_batch_sensor
