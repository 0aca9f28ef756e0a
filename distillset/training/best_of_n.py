"""What a version's manifest and card say about best-of-N: the sampling policy and its outcome.

Read from the teacher stage's catalog tables (``teacher_samples``, ``prompt_pass_rates``) for one
teacher: N, k, early stop, the pass-rate window, the verifiers used and their pass rates,
pass@1, pass@N, coverage, samples paid per prompt and cost per kept example
(``distillset.curation.best_of_n.selection_summary_sql``: aggregates run inside DuckDB over the
catalog's tables, never their columns read into Python).
"""

from __future__ import annotations

import duckdb

from distillset.catalog import Location, connect, table_exists
from distillset.catalog import exists as catalog_exists
from distillset.curation.best_of_n import (
    SUMMARY_RATE_COLUMNS,
    SUMMARY_SAMPLE_COLUMNS,
    SelectionPolicy,
    policy_of,
    selection_summary_sql,
)
from distillset.settings import TeacherSettings


def best_of_n_report(catalog_path: Location, teacher: TeacherSettings) -> dict:
    """The best-of-N summary of ``teacher``'s partition; the policy alone when nothing was sampled."""
    policy = policy_of(teacher)
    if not catalog_exists(catalog_path):
        return {"policy": policy.as_dict()}
    with connect(catalog_path, read_only=True) as con:
        samples = _partition(con, "teacher_samples", teacher.model, SUMMARY_SAMPLE_COLUMNS)
        rates = _partition(con, "prompt_pass_rates", teacher.model, SUMMARY_RATE_COLUMNS)
        if samples is None or rates is None or not _has_rows(con, samples) or not _has_rows(con, rates):
            return {"policy": policy.as_dict()}
        summary = selection_summary_sql(con, samples, rates, policy)
    # The catalog holds one run's rows: the tables of the same partition, whatever else changed.
    return {k: v for k, v in summary.items() if k != "drop_reasons"}


def policy_config(teacher: TeacherSettings) -> dict | None:
    """The policy for the config hash, or None while it is the single-answer default (hash unchanged)."""
    policy = policy_of(teacher).as_dict()
    return None if policy == SelectionPolicy().as_dict() else policy


def _partition(con: duckdb.DuckDBPyConnection, table: str, model: str, columns: tuple[str, ...]) -> str | None:
    """``table``'s rows of ``model`` as a SQL relation with ``columns`` (NULL where an older catalog's
    table lacks one), or None when there is no such table."""
    if not table_exists(con, table):
        return None
    present = {row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()}
    selected = ", ".join(f'"{c}"' if c in present else f'NULL AS "{c}"' for c in columns)
    literal = "'" + model.replace("'", "''") + "'"
    return f'(SELECT {selected} FROM "{table}" WHERE teacher_model = {literal})'


def _has_rows(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    return con.execute(f"SELECT EXISTS (SELECT 1 FROM {relation})").fetchone()[0]
