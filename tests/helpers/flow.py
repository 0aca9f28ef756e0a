"""Helpers for tests that run the whole Dagster flow in process (imported by those test modules)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

MODEL = "meta-llama/Llama-3.1-405B-Instruct"
# Every asset of the flow, in the order the UI's lineage reads: the tests that check the
# definitions and the UI's materialize-all dialog agree on one list.
ASSETS = (
    "raw_prompts",
    "prompt_pool",
    "teacher_generations",
    "deduplicated_generations",
    "quality_scores",
    "judge_scores",
    "training_examples",
    "training_set",
    "teacher_scorecard",
    "student_scorecards",
)


def materialize_flow(
    instance: dg.DagsterInstance, definitions: Sequence | None = None, *, model: str = MODEL
) -> dg.ExecuteInProcessResult:
    """Register ``model`` as a teacher partition if new, then materialize ``definitions`` for it.

    ``definitions`` defaults to every asset and asset check of ``orchestration.definitions``.
    """
    from distillset.settings import load_settings
    from orchestration.definitions import all_asset_checks, all_assets
    from orchestration.resources import build_resources

    if model not in instance.get_dynamic_partitions("teacher_models"):
        instance.add_dynamic_partitions("teacher_models", [model])
    return dg.materialize(
        list(definitions) if definitions is not None else [*all_assets, *all_asset_checks],
        resources=build_resources(load_settings()),
        partition_key=model,
        instance=instance,
        raise_on_error=False,
    )


def last_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The plain metadata values of ``asset``'s last materialization in ``result``."""
    materializations = result.asset_materializations_for_node(asset)
    assert materializations, f"{asset} was not materialized"
    return {k: getattr(v, "value", v) for k, v in materializations[-1].metadata.items()}


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """``step: error`` for every failed step, for assertion messages."""
    return [
        f"{e.step_key}: {e.event_specific_data.error.message}"
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
