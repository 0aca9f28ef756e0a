"""What a version's manifest and card say about best-of-N: the sampling policy and its outcome.

Read from the teacher stage's catalog tables (``teacher_samples``, ``prompt_pass_rates``) for one
teacher: N, k, early stop, the pass-rate window, the verifiers used and their pass rates,
pass@1, pass@N, coverage, samples paid per prompt and cost per kept example
(``distillset.curation.best_of_n.selection_summary``).
"""

from __future__ import annotations

import polars as pl

from distillset.catalog import Location, connect, table_exists
from distillset.catalog import exists as catalog_exists
from distillset.curation.best_of_n import SUMMARY_SAMPLE_COLUMNS, SelectionPolicy, policy_of, selection_summary
from distillset.settings import TeacherSettings


def best_of_n_report(catalog_path: Location, teacher: TeacherSettings) -> dict:
    """The best-of-N summary of ``teacher``'s partition; the policy alone when nothing was sampled."""
    policy = policy_of(teacher)
    samples = _read(catalog_path, "teacher_samples", teacher.model, SUMMARY_SAMPLE_COLUMNS)
    rates = _read(catalog_path, "prompt_pass_rates", teacher.model, _RATE_COLUMNS)
    if samples.is_empty() or rates.is_empty():
        return {"policy": policy.as_dict()}
    summary = selection_summary(samples, rates, policy)
    # The catalog holds one run's rows: the tables of the same partition, whatever else changed.
    return {k: v for k, v in summary.items() if k != "drop_reasons"}


def policy_config(teacher: TeacherSettings) -> dict | None:
    """The policy for the config hash, or None while it is the single-answer default (hash unchanged)."""
    policy = policy_of(teacher).as_dict()
    return None if policy == SelectionPolicy().as_dict() else policy


_RATE_COLUMNS = ("verifier", "kept", "samples_correct", "pass_rate")


def _read(catalog_path: Location, table: str, model: str, columns: tuple[str, ...]) -> pl.DataFrame:
    if not catalog_exists(catalog_path):
        return pl.DataFrame()
    with connect(catalog_path, read_only=True) as con:
        if not table_exists(con, table):
            return pl.DataFrame()
        present = {row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()}
        selected = ", ".join(f'"{c}"' for c in columns if c in present) or "*"
        return con.execute(f'SELECT {selected} FROM "{table}" WHERE teacher_model = ?', [model]).pl()
