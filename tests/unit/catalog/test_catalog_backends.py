"""The catalog's interface behaves the same on its three backends (issue 14, "Shared state"): the
embedded DuckDB file, DuckLake with data in a folder, DuckLake with data in S3 (moto).

Writes are atomic (a partition's delete and insert commit together, a chunked write commits whole
or not at all), readers see committed data only, and two writers of different partitions of one
table at once both land (a lake's conflicting commit is retried).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import boto3
import polars as pl
import pytest

from distillset import catalog
from distillset.catalog_lake import Lake

SCHEMA = {"teacher_model": pl.String, "x": pl.Int64}


def rows(model: str, *values: int) -> pl.DataFrame:
    return pl.DataFrame({"teacher_model": [model] * len(values), "x": list(values)}, schema=SCHEMA)


def partition(location, table: str, model: str) -> list[int]:
    frame = catalog.read_table(location, table, "WHERE teacher_model = ? ORDER BY x", [model])
    return frame["x"].to_list() if not frame.is_empty() else []


def test_a_missing_table_reads_as_empty(catalog_location):
    assert catalog.read_table(catalog_location, "nothing").is_empty()
    assert catalog.count_rows(catalog_location, "nothing") == 0
    assert catalog.table_columns(catalog_location, "nothing") == []
    assert list(catalog.iter_rows(catalog_location, "SELECT 1 WHERE false")) == []


def test_replace_table_then_read_count_query_and_columns(catalog_location):
    catalog.replace_table(catalog_location, "t", rows("a", 1, 2, 3))
    catalog.replace_table(catalog_location, "t", rows("a", 4, 5))  # replaced whole, not appended
    assert partition(catalog_location, "t", "a") == [4, 5]
    assert catalog.count_rows(catalog_location, "t", "WHERE x > ?", [4]) == 1
    assert catalog.table_columns(catalog_location, "t") == ["teacher_model", "x"]
    assert catalog.query(catalog_location, "SELECT sum(x) FROM t") == [(9,)]
    assert sorted(catalog.iter_rows(catalog_location, "SELECT x FROM t", chunk_rows=1)) == [(4,), (5,)]


def test_replace_partition_keeps_the_other_partitions(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("a", 1, 2), column="teacher_model", value="a")
    catalog.replace_partition(catalog_location, "t", rows("b", 3), column="teacher_model", value="b")
    catalog.replace_partition(catalog_location, "t", rows("a", 7), column="teacher_model", value="a")
    assert partition(catalog_location, "t", "a") == [7]
    assert partition(catalog_location, "t", "b") == [3]


def test_a_grown_schema_widens_the_table_and_keeps_the_others_rows(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("a", 1), column="teacher_model", value="a")
    wider = rows("b", 2).with_columns(y=pl.lit("new"))
    catalog.replace_partition(catalog_location, "t", wider, column="teacher_model", value="b")
    frame = catalog.read_table(catalog_location, "t", "ORDER BY x")
    assert frame.columns == ["teacher_model", "x", "y"]
    assert frame.rows() == [("a", 1, None), ("b", 2, "new")]


def test_a_failed_partition_write_changes_nothing(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("a", 1, 2), column="teacher_model", value="a")
    # The delete runs, then the insert fails (a string where the table has integers): both roll back.
    bad = pl.DataFrame({"teacher_model": ["a"], "x": ["not a number"]})
    with pytest.raises(Exception, match="(?i)convert|cast"):
        catalog.replace_partition(catalog_location, "t", bad, column="teacher_model", value="a")
    assert partition(catalog_location, "t", "a") == [1, 2]


def test_a_chunked_write_commits_whole_and_readers_see_only_committed_rows(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("a", 1), column="teacher_model", value="a")
    with catalog.write_chunks(catalog_location) as writer:
        writer.replace_partition("t", SCHEMA, column="teacher_model", value="a")
        writer.append("t", rows("a", 10, 11))
        writer.replace_table("u", SCHEMA)
        writer.append("u", rows("z", 5))
        writer._flush()  # the rows are in the transaction now, not yet committed
        if isinstance(catalog_location, Lake):
            # A reader on another connection (another worker) sees the last committed snapshot
            # (the file allows no reader while it is written: its lock makes readers wait).
            assert partition(catalog_location, "t", "a") == [1]
    assert partition(catalog_location, "t", "a") == [10, 11]
    assert partition(catalog_location, "u", "z") == [5]


def test_a_chunked_write_that_fails_leaves_nothing(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("a", 1), column="teacher_model", value="a")
    with pytest.raises(RuntimeError, match="stage failed"), catalog.write_chunks(catalog_location) as writer:
        writer.replace_partition("t", SCHEMA, column="teacher_model", value="a")
        writer.append("t", rows("a", 10))
        writer._flush()
        raise RuntimeError("stage failed")
    assert partition(catalog_location, "t", "a") == [1]
    assert not [p for p in catalog.local_dir(catalog_location).iterdir() if ".chunks-" in p.name]


def test_own_sql_through_connect_iter_chunks_and_key_ranges(catalog_location):
    catalog.replace_table(catalog_location, "t", rows("a", *range(10)))
    with catalog.connect(catalog_location, read_only=True) as con:
        assert catalog.table_exists(con, "t") and not catalog.table_exists(con, "nope")
        ranges = list(catalog.key_ranges(con, "t", "x", "WHERE teacher_model = ?", ["a"], rows=4))
        assert [bounds for _, bounds in ranges] == [[0, 4], [4, 8], [8]]
        seen = []
        for condition, bounds in ranges:
            sql = f"SELECT x FROM t WHERE {condition} ORDER BY x"
            seen += [v for chunk in catalog.iter_chunks(con, sql, bounds, chunk_rows=3) for v in chunk["x"]]
        assert seen == list(range(10))
        # A cursor (another connection to the same database: the stages stream through one while
        # querying on another) sees the catalog's tables too.
        cursor = con.cursor()
        assert cursor.execute("SELECT count(*) FROM t").fetchone() == (10,)
        cursor.close()
        # Temporary tables (the quality rules' SQL makes them) live beside the lake's tables.
        con.execute("CREATE OR REPLACE TEMP TABLE scratch AS SELECT x * 2 AS y FROM t")
        assert con.execute("SELECT max(y) FROM scratch").fetchone() == (18,)


def test_two_writers_of_different_partitions_at_once_both_land(catalog_location):
    catalog.replace_partition(catalog_location, "t", rows("seed", 0), column="teacher_model", value="seed")
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def write(model: str) -> None:
        try:
            start.wait()
            for round_ in range(3):
                frame = rows(model, *range(round_, round_ + 5))
                catalog.replace_partition(catalog_location, "t", frame, column="teacher_model", value=model)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"m{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for i in range(4):
        assert partition(catalog_location, "t", f"m{i}") == [2, 3, 4, 5, 6]
    assert partition(catalog_location, "t", "seed") == [0]


def test_a_lakes_data_are_parquet_files_under_its_data_path(catalog_location, moto_endpoint):
    if not isinstance(catalog_location, Lake):
        pytest.skip("the file backend keeps its data in catalog.duckdb")
    # More rows than DuckLake inlines into its metadata database (small inserts stay in PostgreSQL).
    catalog.replace_table(catalog_location, "t", rows("a", *range(5_000)))
    data = catalog_location.data_path
    if data.startswith("s3://"):
        bucket, prefix = data.removeprefix("s3://").split("/", 1)
        listing = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
        files = [o["Key"] for o in listing.get("Contents", [])]
    else:
        files = [str(p) for p in Path(data).rglob("*")]
    assert any(f.endswith(".parquet") for f in files), files
    assert not (catalog_location.local_dir / "catalog.duckdb").exists()


def _advisory_waiters(lake: Lake) -> int:
    import psycopg

    from distillset.settings.catalog_url import postgres_conninfo

    with psycopg.connect(postgres_conninfo(lake.url), autocommit=True) as con:
        return con.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]


def test_a_lakes_writers_queue_and_a_nested_write_does_not_wait_for_itself(catalog_location):
    if not isinstance(catalog_location, Lake):
        pytest.skip("the file's own lock queues its writers (and Dagster's one-slot pool)")
    order: list[str] = []
    other = threading.Thread(
        target=lambda: (
            catalog.replace_partition(catalog_location, "t", rows("b", 2), column="teacher_model", value="b"),
            order.append("other worker wrote"),
        )
    )
    with catalog.write_chunks(catalog_location) as writer:
        writer.replace_partition("t", SCHEMA, column="teacher_model", value="a")
        writer.append("t", rows("a", 1))
        # A write of this thread's own while its chunked write is open goes through (re-entrant).
        catalog.replace_table(catalog_location, "nested", rows("n", 9))
        other.start()
        deadline = time.monotonic() + 60
        while not _advisory_waiters(catalog_location):
            assert time.monotonic() < deadline, "the other writer never queued behind the writer lock"
            time.sleep(0.05)
        order.append("chunked write committed")
    other.join()
    assert order == ["chunked write committed", "other worker wrote"]
    assert partition(catalog_location, "t", "a") == [1] and partition(catalog_location, "t", "b") == [2]
    assert partition(catalog_location, "nested", "n") == [9]


def test_this_process_lake_instance_sees_what_another_machine_commits(catalog_location):
    if not isinstance(catalog_location, Lake):
        pytest.skip("a file is not shared between machines")
    from distillset.catalog_lake import open_lake

    catalog.replace_partition(catalog_location, "t", rows("a", 1), column="teacher_model", value="a")
    assert partition(catalog_location, "t", "a") == [1]  # this process's instance is open now
    other_machine = open_lake(catalog_location)  # an instance of its own, as another process has
    try:
        other_machine.execute("BEGIN TRANSACTION")
        other_machine.execute("DELETE FROM t WHERE teacher_model = 'a'")
        other_machine.execute("INSERT INTO t VALUES ('a', 2), ('b', 3)")
        other_machine.execute("COMMIT")
        other_machine.execute('CREATE TABLE "new_table" AS SELECT 7 AS x')
    finally:
        other_machine.close()
    assert partition(catalog_location, "t", "a") == [2] and partition(catalog_location, "t", "b") == [3]
    assert catalog.query(catalog_location, "SELECT x FROM new_table") == [(7,)]
