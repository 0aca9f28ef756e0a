"""Dagster metadata for a stage's output: row count, column schema and a Markdown preview."""

from collections.abc import Mapping, Sequence

import dagster as dg
import polars as pl

_PREVIEW_CELL_CHARS = 80


def column_schema(frame: pl.DataFrame, descriptions: Mapping[str, str] | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions.get(name))
            for name, dtype in frame.schema.items()
        ]
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= _PREVIEW_CELL_CHARS else text[: _PREVIEW_CELL_CHARS - 1] + "…"


def markdown_preview(frame: pl.DataFrame, columns: Sequence[str] | None = None, rows: int = 10) -> str:
    """A Markdown table of the first ``rows`` rows, cells shortened to stay readable in the UI."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    if frame.is_empty() or not columns:
        return "_no rows_"
    head = frame.select(columns).head(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def counts_markdown(counts: Mapping[str, int], key_label: str = "reason") -> str:
    """A two-column Markdown table of counts, largest first."""
    if not counts:
        return "_none_"
    lines = [f"| {key_label} | rows |", "|---|---:|"]
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def table_metadata(
    frame: pl.DataFrame,
    *,
    preview_columns: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The standard metadata every table-producing asset returns."""
    return {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "dagster/column_schema": column_schema(frame, descriptions),
        "preview": dg.MetadataValue.md(markdown_preview(frame, preview_columns)),
    }


def value_counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if frame.is_empty() or column not in frame.columns:
        return {}
    counted = frame.group_by(column).len()
    return {str(k): int(v) for k, v in counted.iter_rows()}


def _float_or_none(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if value is not None else dg.MetadataValue.null()


def best_of_n_metadata(summary: Mapping[str, object]) -> dict[str, object]:
    """Best-of-N selection metadata: pass@1, pass@N, coverage, samples per prompt, cost, histogram."""
    histogram = summary.get("pass_rate_histogram") or {}
    return {
        "best_of_n/policy": dg.MetadataValue.json(summary.get("policy") or {}),
        "best_of_n/pass_at_1": _float_or_none(summary.get("pass_at_1")),
        "best_of_n/pass_at_n": _float_or_none(summary.get("pass_at_n")),
        "best_of_n/coverage": _float_or_none(summary.get("coverage")),
        "best_of_n/samples_paid_per_prompt": _float_or_none(summary.get("samples_paid_per_prompt")),
        "best_of_n/examples_kept": dg.MetadataValue.int(int(summary.get("examples_kept") or 0)),
        "best_of_n/tokens_per_kept_example": _float_or_none(summary.get("tokens_per_kept_example")),
        "best_of_n/cost_per_kept_example_usd": _float_or_none(summary.get("cost_per_kept_example_usd")),
        "best_of_n/pass_rate_histogram": dg.MetadataValue.md(
            "\n".join(["| pass rate | prompts |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in histogram.items()])
        ),
        "best_of_n/verifiers": dg.MetadataValue.json(summary.get("verifiers") or {}),
        "best_of_n/drop_reasons": dg.MetadataValue.md(counts_markdown(summary.get("drop_reasons") or {})),
    }
