"""Dagster metadata for a stage's output: row count, column schema with descriptions, table previews."""

import json
from collections.abc import Mapping, Sequence

import dagster as dg
import polars as pl

from distillset.columns import column_descriptions

# Long enough to read an answer's opening in the UI's table view, short enough to keep the event
# log small (every materialization stores its metadata).
_PREVIEW_CELL_CHARS = 400


def column_schema(
    frame: pl.DataFrame, descriptions: Mapping[str, str] | None = None, *, table: str | None = None
) -> dg.TableSchema:
    """The frame's columns and types, described from ``docs/engine.md`` (``descriptions`` win)."""
    described = {**column_descriptions(table), **(descriptions or {})}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=described.get(name))
            for name, dtype in frame.schema.items()
        ]
    )


def _cell(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | dict | tuple):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    return text if len(text) <= _PREVIEW_CELL_CHARS else text[: _PREVIEW_CELL_CHARS - 1] + "…"


def preview_table(
    frame: pl.DataFrame, columns: Sequence[str] | None = None, rows: int = 10, *, table: str | None = None
) -> dg.TableMetadataValue:
    """The first ``rows`` rows as a UI table, with its schema; long cells shortened."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    head = frame.select(columns).head(rows) if columns else pl.DataFrame()
    return dg.MetadataValue.table(
        records=[dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in head.iter_rows(named=True)],
        schema=column_schema(head, table=table),
    )


def markdown_preview(frame: pl.DataFrame, columns: Sequence[str] | None = None, rows: int = 10) -> str:
    """A Markdown table of the first ``rows`` rows (for text that is not a table value)."""
    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    if frame.is_empty() or not columns:
        return "_no rows_"
    head = frame.select(columns).head(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in head.iter_rows():
        cells = (str(_cell(v) if v is not None else "").replace("\n", " ").replace("|", "\\|") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def counts_markdown(counts: Mapping[str, int], key_label: str = "reason", value_label: str = "rows") -> str:
    """A two-column Markdown table of counts, largest first."""
    if not counts:
        return "_none_"
    lines = [f"| {key_label} | {value_label} |", "|---|---:|"]
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def table_metadata(
    frame: pl.DataFrame,
    *,
    preview_columns: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    table: str | None = None,
) -> dict[str, object]:
    """The standard metadata every table-producing asset returns.

    Args:
        frame: the table as written.
        preview_columns: the columns the preview shows (default all).
        descriptions: column descriptions beyond ``docs/engine.md``'s.
        table: the catalog table it was written to (``dagster/table_name``; picks its descriptions).
    """
    metadata: dict[str, object] = {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "dagster/column_schema": column_schema(frame, descriptions, table=table),
        "preview": preview_table(frame, preview_columns, table=table),
    }
    if table:
        metadata["dagster/table_name"] = dg.MetadataValue.text(f"catalog.main.{table}")
    return metadata


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
