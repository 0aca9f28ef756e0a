"""Finding one id in the published versions without reading every version's rows.

A version published since streaming says in its manifest (``layout.DATA_INDEX``) that
``data.parquet`` is sorted by ``example_id`` in row groups of bounded size: DuckDB then reads the
footer and the one row group whose statistics can hold the id. A prompt id reads the ``prompt_id``
column alone. Older versions are read whole and filtered, as before.

This module imports neither polars nor dagster: ``distillset explain`` starts fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from distillset import storage
from distillset.publish.claims import scan
from distillset.publish.layout import DATA_INDEX, DATA_PARQUET, version_name
from distillset.publish.reader import read_examples, training_set_names


@dataclass(frozen=True)
class Found:
    """The rows of one version that hold the id (as an example id or a prompt id)."""

    name: str
    version: str
    run_id: str | None
    rows: list[dict]
    indexed: bool
    """Whether the version's row-group index answered (False: the whole file was read)."""


def find_published(
    storage_url: str, query: str, columns: list[str], storage_options: dict | None = None
) -> Iterator[Found]:
    """Every visible version of every training set under ``storage_url`` with rows whose
    ``example_id`` or ``prompt_id`` is ``query``, oldest first, with ``columns`` of those rows."""
    con = None
    try:
        for name in training_set_names(storage_url, storage_options):
            fs, root = storage.filesystem(storage_url, storage_options)
            set_dir = storage.join(root, name)
            for number, manifest in sorted(scan(fs, set_dir).visible.items()):
                version = version_name(number)
                if (manifest.get(DATA_INDEX) or {}).get("sorted_by") == "example_id":
                    if con is None:
                        con = storage.duckdb_connection_for(storage_url, storage_options)
                    path = storage.url_of(fs, storage.join(set_dir, version, DATA_PARQUET))
                    rows, indexed = indexed_rows(con, path, query, columns), True
                else:
                    rows, indexed = scanned_rows(storage_url, name, version, query, columns, storage_options), False
                if rows:
                    yield Found(name, version, manifest.get("dagster_run_id"), rows, indexed)
    finally:
        if con is not None:
            con.close()


def indexed_rows(con, data_url: str, query: str, columns: list[str]) -> list[dict]:
    """The rows of a sorted ``data.parquet`` whose example id is ``query`` (one row group read by
    its statistics), else those whose prompt id is ``query`` (one column read)."""
    selected = ", ".join(f'"{c}"' for c in columns)
    for column in ("example_id", "prompt_id"):
        cursor = con.execute(f'SELECT {selected} FROM read_parquet(?) WHERE "{column}" = ?', [data_url, query])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        if rows:
            return rows
    return []


def scanned_rows(
    storage_url: str, name: str, version: str, query: str, columns: list[str], storage_options: dict | None
) -> list[dict]:
    """The rows of a version without the index whose example or prompt id is ``query`` (every row read)."""
    import polars as pl  # only the fallback for older versions needs it

    frame = read_examples(storage_url, name, version, storage_options, columns=columns)
    return frame.filter((pl.col("example_id") == query) | (pl.col("prompt_id") == query)).to_dicts()
