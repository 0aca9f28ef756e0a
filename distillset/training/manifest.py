"""What a version's manifest says about how it was made: one function, called by the publisher's caller.

The publisher (``distillset.publish``) adds what it computes from the rows themselves (content
hash, splits, licenses, files); this module gathers what only the flow knows: stage counts and
drops from the catalog, the quality gates' verdicts, the split check and the configuration that
produced the rows (hashed into ``config_hash``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from distillset.curation.near_dedup import NearDupParams
from distillset.quality.gates import evaluate_gates
from distillset.quality.summary import quality_summary
from distillset.settings import JudgeSettings, QualityGates, QualityThresholds, TeacherSettings
from distillset.training.best_of_n import best_of_n_report, policy_config
from distillset.training.split import split_overlap
from distillset.training.stage_report import drops_by_reason, stage_counts


def version_manifest(
    catalog_path: Path,
    *,
    examples: pl.DataFrame,
    scores: pl.DataFrame,
    teacher: TeacherSettings,
    thresholds: QualityThresholds,
    gates: QualityGates,
    validation_fraction: float,
    formats: list[str],
    judge: JudgeSettings | None,
    run_id: str | None,
) -> tuple[dict, dict]:
    """The ``manifest_fields`` and ``card_context`` for ``distillset.publish.protocol.publish_training_set``.

    Args:
        catalog_path: the DuckDB catalog (stage counts and drops are read from it).
        examples: the ``training_examples`` rows of the teacher partition.
        scores: the ``quality_scores`` rows of the same partition.
        teacher: the teacher's settings (model, sampling, system prompt).
        thresholds, gates: the quality configuration that scored the rows.
        validation_fraction, formats: the publish configuration.
        judge: the judge's settings when judgments were blended in, else None.
        run_id: the Dagster run that produced the version.
    """
    model = teacher.model
    gate_results = evaluate_gates(scores, gates)
    overlap = split_overlap(examples)
    simulated = bool(examples["simulated"].any()) if examples.height else teacher.base_url is None
    manifest_fields = {
        "teacher_model": model,
        "simulated": simulated,
        "sampling": teacher.sampling_params(),
        "counts": stage_counts(catalog_path, model),
        "drops_by_reason": drops_by_reason(catalog_path, model),
        "checks": {
            **{g.name: {"passed": g.passed, "value": g.value, "limit": g.limit} for g in gate_results},
            "split_disjoint": {"passed": not any(overlap.values()), "value": overlap},
        },
        "config": {
            "sampling": teacher.sampling_params(),
            "system_prompt": teacher.sampling.system_prompt,
            "quality_thresholds": dataclasses.asdict(thresholds),
            "quality_gates": dataclasses.asdict(gates),
            "near_duplicates": dataclasses.asdict(NearDupParams()),
            "validation_fraction": validation_fraction,
            "formats": formats,
            "judge": {"model": judge.model, "weight": judge.weight, "min_score": judge.min_score} if judge else None,
        },
        "dagster_run_id": run_id,
        "best_of_n": best_of_n_report(catalog_path, teacher),
    }
    if policy_config(teacher) is not None:
        manifest_fields["config"]["best_of_n"] = policy_config(teacher)
    return manifest_fields, {"quality": quality_summary(scores), "best_of_n": manifest_fields["best_of_n"]}
