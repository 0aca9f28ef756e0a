"""Helpers for tests that run the whole Dagster flow in process (imported by those test modules)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

MODEL = "meta-llama/Llama-3.1-405B-Instruct"


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
