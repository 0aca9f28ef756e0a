"""Run tags that say what a run did: the teacher, what it paid, the version it published.

The run list in the UI shows tags, so an operator scanning a night's runs sees which teacher each
was for and whether it published, without opening each run.
"""

import dagster as dg

from assets.constants import LAUNCHED_BY_TAG

__all__ = ["LAUNCHED_BY_TAG", "TEACHER_TAG", "CALLS_PAID_TAG", "COST_TAG", "VERSION_TAG", "tag_run"]
TEACHER_TAG = "distillset/teacher"
CALLS_PAID_TAG = "distillset/calls_paid"
COST_TAG = "distillset/cost_usd"
VERSION_TAG = "distillset/version"


def tag_run(context: dg.AssetExecutionContext, tags: dict[str, str]) -> None:
    """Add ``tags`` to the running run (a failure to tag never fails the stage)."""
    try:
        context.instance.add_run_tags(context.run_id, {k: str(v) for k, v in tags.items()})
    except Exception as exc:  # noqa: BLE001 - tags are for people; the stage's result is what matters
        context.log.warning(f"could not tag the run: {exc}")
