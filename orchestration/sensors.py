"""The new-release sensor: a new Llama release becomes a teacher partition and a run, in one tick.

Each tick lists the models the teacher endpoint serves (``TEACHER_BASE_URL``, its
``GET /models``) and, if ``DISTILLSET_RELEASE_HUB_URL`` is set, the models a Hugging Face-style
hub lists for ``DISTILLSET_RELEASE_HUB_AUTHOR`` (default ``meta-llama``), keeps the ids matching
``DISTILLSET_RELEASE_PATTERN`` (default: Llama instruct releases) and, for each one it has not
seen, registers the partition and requests the whole flow for it (with ``DISTILLSET_SHARDS`` > 1 an
asset backfill of the whole graph for it, no run key: the cursor keeps it to one per release).

"Seen" is the cursor (the releases this sensor acted on) plus every registered teacher partition,
so a teacher added by ``distillset run`` or by hand never triggers a duplicate; the run key
``release:<model>`` makes a repeated or restarted tick idempotent as well. On a fresh deployment
the first tick treats every matching id as new: turning the sensor on means "distill every
release the endpoint serves and keep doing so".

The endpoint and its key come from the ``teacher`` resource (``dg.EnvVar``, resolved at each tick)
and the key is only sent to the endpoint; it never goes into the cursor, a log line or a skip
reason.
"""

from __future__ import annotations

import json

import dagster as dg

from assets.constants import LAUNCHED_BY_TAG, RELEASE_SENSOR
from assets.partitions import teacher_partitions
from assets.resources import ReleaseSourceResource, TeacherResource
from distillset.settings import RefreshSettings
from distillset.teacher.releases import ReleaseSourceError, discover_models, match_releases
from orchestration.jobs import distill_job
from orchestration.recovery import reap_dead_runs
from orchestration.shards import teacher_backfill_request

SENSOR_NAME = RELEASE_SENSOR
HUB_URL_ENV = "DISTILLSET_RELEASE_HUB_URL"
# A tick runs inside the daemon's sensor budget (60 s by default); two sources at 10 s each fit.
SOURCE_TIMEOUT_S = 10.0


def read_cursor(cursor: str | None) -> set[str]:
    """The release ids a cursor records; an empty or unreadable cursor records none."""
    if not cursor:
        return set()
    try:
        return {model for model in json.loads(cursor).get("seen", []) if isinstance(model, str)}
    except (json.JSONDecodeError, AttributeError, TypeError):
        return set()


def write_cursor(seen: set[str]) -> str:
    """The cursor for the release ids in ``seen`` (model ids only; never configuration)."""
    return json.dumps({"seen": sorted(seen)})


def find_new_releases(
    context: dg.SensorEvaluationContext,
    teacher: TeacherResource,
    release_source: ReleaseSourceResource,
    shards: int = 1,
) -> dg.SensorResult | dg.SkipReason:
    """One tick: discover, match, and turn every unseen release into a partition and a run (with
    ``shards`` > 1, an asset backfill of the whole graph for it: ``orchestration/shards.py``)."""
    base_url = teacher.base_url or None
    hub_url = release_source.hub_url or None
    if not base_url and not hub_url:
        return dg.SkipReason(
            f"no release source: set TEACHER_BASE_URL (the teacher endpoint, whose /models is listed) "
            f"and/or {HUB_URL_ENV} (e.g. https://huggingface.co) in the environment `dagster dev` (`make ui`) or "
            "the code server runs in"
        )
    pattern = release_source.release_pattern
    try:
        model_ids = discover_models(
            base_url,
            teacher.api_key or None,
            hub_url=hub_url,
            hub_author=release_source.hub_author,
            timeout_s=SOURCE_TIMEOUT_S,
        )
        releases = match_releases(model_ids, pattern)
    except ReleaseSourceError as exc:
        return dg.SkipReason(f"could not list releases, will retry next tick: {exc}")
    except ValueError as exc:
        return dg.SkipReason(str(exc))
    acted_on = read_cursor(context.cursor)
    registered = set(context.instance.get_dynamic_partitions(teacher_partitions.name))
    new = [model for model in releases if model not in acted_on and model not in registered]
    cursor = write_cursor(acted_on | set(releases))
    if not new:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"no new release: {len(model_ids)} models listed, {len(releases)} match {pattern!r}, all already seen"
            ),
            cursor=cursor,
        )
    context.log.info(f"new teacher releases: {', '.join(new)}")
    if shards > 1:
        # A backfill has no run key: the cursor, written in the same result, keeps it to one per release.
        requests = [
            teacher_backfill_request(context.repository_def.asset_graph, model, {LAUNCHED_BY_TAG: SENSOR_NAME})
            for model in new
        ]
    else:
        requests = [
            dg.RunRequest(partition_key=model, run_key=f"release:{model}", tags={LAUNCHED_BY_TAG: SENSOR_NAME})
            for model in new
        ]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[teacher_partitions.build_add_request(new)],
        cursor=cursor,
    )


def build_release_sensor(refresh: RefreshSettings, shards: int = 1) -> dg.SensorDefinition:
    """The new-release sensor, polling every ``refresh.sensor_interval_s`` seconds; with ``shards`` > 1
    it targets every asset (its requests are asset backfills) rather than ``distill_job``."""

    @dg.sensor(
        name=SENSOR_NAME,
        **({"job": distill_job} if shards == 1 else {"asset_selection": dg.AssetSelection.all()}),
        minimum_interval_seconds=refresh.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Lists TEACHER_BASE_URL's /models (and DISTILLSET_RELEASE_HUB_URL's listing, if set); every "
            "release matching DISTILLSET_RELEASE_PATTERN not seen before becomes a teacher partition and a "
            "run of distill_job in the same tick. The first tick treats every match as new. Stopped until you "
            "turn it on."
        ),
    )
    def new_teacher_release_sensor(
        context: dg.SensorEvaluationContext, teacher: TeacherResource, release_source: ReleaseSourceResource
    ):
        return find_new_releases(context, teacher, release_source, shards)

    return new_teacher_release_sensor


STALE_RUN_SENSOR_NAME = "stale_run_sensor"


@dg.sensor(
    name=STALE_RUN_SENSOR_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Housekeeping, on by default, launches nothing: every minute it marks failed the runs of this host whose "
        "process is gone (kill -9, out of memory, reboot) and frees the catalog pool slots they held, so a dead "
        "run never blocks the next one (orchestration/recovery.py)."
    ),
)
def stale_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    for dead in reaped:
        context.log.warning(
            f"run {dead.run_id} ({dead.job_name}) had died (pid {dead.pid}): marked failed, slots freed"
        )
    return dg.SkipReason(f"{len(reaped)} dead run(s) marked failed" if reaped else "no dead run")
