"""What a version's manifest says about how it was made: one function, called by the publisher's caller.

The publisher (``distillset.publish``) adds what it computes from the rows themselves (content
hash, splits, licenses, files); this module gathers what only the flow knows: stage counts and
drops from the catalog, the quality gates' verdicts, the split check and the configuration that
produced the rows (hashed into ``config_hash``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

from distillset.catalog import Location
from distillset.curation.decontam import Benchmark
from distillset.curation.near_dedup import NearDupParams
from distillset.ids import sha256_hex
from distillset.quality.aggregates import frame_aggregates, partition_aggregates
from distillset.quality.gates import gates_of
from distillset.quality.summary import summary_of
from distillset.settings import JudgeSettings, QualityGates, QualityThresholds, TeacherSettings
from distillset.training.best_of_n import best_of_n_report, policy_config
from distillset.training.partition import examples_split_overlap
from distillset.training.split import split_overlap
from distillset.training.stage_report import drops_by_reason, stage_counts


def version_manifest(
    catalog_path: Location,
    *,
    examples: pl.DataFrame | None = None,
    scores: pl.DataFrame | None = None,
    teacher: TeacherSettings,
    thresholds: QualityThresholds,
    gates: QualityGates,
    validation_fraction: float,
    formats: list[str],
    judge: JudgeSettings | None,
    run_id: str | None,
    prompts_url: str | None = None,
    benchmarks: Sequence[Benchmark] = (),
) -> tuple[dict, dict]:
    """The ``manifest_fields`` and ``card_context`` for ``distillset.publish.protocol.publish_training_set``.

    Args:
        catalog_path: the DuckDB catalog (stage counts and drops are read from it).
        examples: the ``training_examples`` rows of the teacher partition; None to read the split
            check from the catalog by SQL (the publisher streams the rows, never holds them).
        scores: the ``quality_scores`` rows of the same partition; None to aggregate the catalog's
            partition by SQL (the same figures, without holding the rows).
        teacher: the teacher's settings (model, sampling, system prompt).
        thresholds, gates: the quality configuration that scored the rows.
        validation_fraction, formats: the publish configuration.
        judge: the judge's settings when judgments were blended in, else None.
        run_id: the Dagster run that produced the version.
        prompts_url: where the prompts were read (``DISTILLSET_PROMPTS_URL``): part of the config
            (and its hash); the publisher shows it and the source files without a local path.
        benchmarks: the decontamination benchmarks (by name, file name and content hash).

    Whether the version is simulated is not decided here: the publisher counts it from the rows.
    """
    model = teacher.model
    aggregates = frame_aggregates(scores) if scores is not None else partition_aggregates(catalog_path, model)
    gate_results = gates_of(aggregates, gates)
    overlap = split_overlap(examples) if examples is not None else examples_split_overlap(catalog_path, model)
    sampling = sampling_record(teacher)
    manifest_fields = {
        "teacher_model": model,
        "sampling": sampling,
        "prompts_url": prompts_url,
        "counts": stage_counts(catalog_path, model),
        "drops_by_reason": drops_by_reason(catalog_path, model),
        "checks": {
            **{g.name: {"passed": g.passed, "value": g.value, "limit": g.limit} for g in gate_results},
            "split_disjoint": {"passed": not any(overlap.values()), "value": overlap},
        },
        "config": {
            "teacher": {"model": model, "endpoint": endpoint_address(teacher.base_url)},
            "sampling": sampling,
            "prompts_url": prompts_url,
            "benchmarks": [benchmark_record(b) for b in benchmarks],
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
    return manifest_fields, {"quality": summary_of(aggregates), "best_of_n": manifest_fields["best_of_n"]}


def sampling_record(teacher: TeacherSettings) -> dict:
    """Everything that decides an answer besides the model and the prompt: the request's sampling
    parameters, the seed (None when unset) and the default system prompt."""
    return {**teacher.sampling_params(), "seed": teacher.sampling.seed, "system_prompt": teacher.sampling.system_prompt}


def endpoint_address(base_url: str | None) -> str:
    """``simulator`` or the endpoint's scheme, host and port (never a path, a query or user info)."""
    if not base_url:
        return "simulator"
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def benchmark_record(benchmark: Benchmark) -> dict:
    """A decontamination benchmark as the config records it: name, fields, file name and content hash."""
    path = Path(benchmark.path)
    try:
        digest = sha256_hex(path.read_bytes())
    except OSError:
        digest = None
    return {"name": benchmark.name, "file": path.name, "fields": list(benchmark.text_fields), "sha256": digest}
