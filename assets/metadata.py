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
