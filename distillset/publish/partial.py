"""Whether a version made after a budget stop may be published.

A run stopped by its budget answers only part of the pool. Published as LATEST, that smaller set
would silently replace a complete one, and downstream training would pick it up. So a budget-stopped
run publishes only when the result is not smaller than LATEST, or when the user asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from distillset.publish.reader import list_versions


@dataclass(frozen=True)
class PartialDecision:
    """What the publisher does with a budget-stopped run's examples."""

    publish: bool
    message: str | None
    """Why not, or what is published anyway (None for a run the budget did not stop)."""
    latest_version: str | None = None
    latest_examples: int | None = None


def partial_decision(
    storage_url: str,
    name: str,
    *,
    examples: int,
    skipped_for_budget: int,
    allow_partial: bool,
    storage_options: dict | None = None,
) -> PartialDecision:
    """Decide whether ``examples`` rows, made with ``skipped_for_budget`` conversations unanswered, publish.

    Args:
        storage_url: where the training set's versions live.
        name: the training set.
        examples: rows the new version would hold.
        skipped_for_budget: conversations the teacher stage skipped because the budget ran out.
        allow_partial: ``DISTILLSET_ALLOW_PARTIAL`` / ``--allow-partial``.
        storage_options: fsspec options (the S3 endpoint).
    """
    if skipped_for_budget == 0:
        return PartialDecision(True, None)
    versions = list_versions(storage_url, name, storage_options)
    latest = versions[-1] if versions else None
    latest_examples = int(latest.counts.get("examples", 0)) if latest else None
    what = f"the teacher's budget ran out with {skipped_for_budget} conversations unanswered"
    if latest is None or examples >= (latest_examples or 0):
        return PartialDecision(True, f"{what}; published anyway: nothing larger to keep", None, None)
    versus = f"{examples} examples against {latest_examples} in LATEST {latest.version}"
    if allow_partial:
        return PartialDecision(
            True, f"{what}; {versus}: published as asked (allow partial)", latest.version, latest_examples
        )
    return PartialDecision(
        False,
        f"{what}; {versus}: nothing published, {latest.version} stays LATEST "
        "(rerun with a larger budget, or pass --allow-partial / DISTILLSET_ALLOW_PARTIAL=true)",
        latest.version,
        latest_examples,
    )
