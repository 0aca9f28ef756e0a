"""Prompt shards (DISTILLSET_SHARDS, issue 14): the shard function and the shard records.

Protects: a prompt's shard is the same in DuckDB and in Python, is a function of the prompt id
alone, and every shard count splits the ids into disjoint slices that cover them; recording a
shard keeps one record per shard and forgets the records of another shard count; a teacher may be
read only when every shard of the configured count is recorded, and the refusal names the missing
shards and the count the rows were written with; an unsharded run forgets the records.
"""

from __future__ import annotations

import duckdb
import pytest

from distillset.ids import prompt_id
from distillset.prompts.shards import (
    forget_shards,
    missing_shards,
    record_shard,
    recorded_shards,
    shard_of,
    shard_sql,
    slice_condition,
)

MODEL = "meta-llama/Llama-3.1-405B-Instruct"


@pytest.fixture
def con():
    with duckdb.connect() as connection:
        yield connection


def _ids(n: int) -> list[str]:
    return [prompt_id("ab" * 32, i) for i in range(n)]


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_duckdb_and_python_agree_and_the_slices_cover_the_ids_once(con, shards):
    ids = _ids(300)
    con.execute("CREATE TABLE pool AS SELECT unnest(?) AS prompt_id", [ids])
    in_sql = dict(con.execute(f"SELECT prompt_id, {shard_sql(shards)} FROM pool").fetchall())
    assert in_sql == {i: shard_of(i, shards) for i in ids}
    slices = [
        {row[0] for row in con.execute(f"SELECT prompt_id FROM pool WHERE {slice_condition(shards, s)}").fetchall()}
        for s in range(shards)
    ]
    assert sum(len(s) for s in slices) == len(ids) and set().union(*slices) == set(ids)
    if shards > 1:
        assert all(slices), "a shard got no prompt out of 300"


def test_a_known_id_keeps_its_shard():
    # md5("abc") = 900150983cd24fb0...: 0x90015098 = 2416005272; a changed function would move every shard.
    assert [shard_of("abc", n) for n in (2, 3, 7)] == [0, 2, 2]


def test_records_describe_one_sharding_and_reads_need_all_of_it(con):
    assert missing_shards(recorded_shards(con, MODEL), 1) is None  # never sharded: nothing to check
    problem = missing_shards(recorded_shards(con, MODEL), 2)
    assert "0 of 2 shards" in problem and "missing shard(s) 0, 1" in problem

    record_shard(con, MODEL, 2, 0, rows=10, run_id="r0")
    record_shard(con, MODEL, 2, 0, rows=11, run_id="r0-again")  # a rerun replaces its record
    record_shard(con, "other-teacher", 2, 1, rows=5, run_id="o1")
    assert recorded_shards(con, MODEL) == {2: {0}}
    assert "missing shard(s) 1" in missing_shards(recorded_shards(con, MODEL), 2)
    record_shard(con, MODEL, 2, 1, rows=9, run_id="r1")
    assert missing_shards(recorded_shards(con, MODEL), 2) is None
    assert missing_shards(recorded_shards(con, MODEL), 1) is None  # unsharded reader: a whole sharding

    # Another count: the old records go (their slices are being overwritten), reads wait for all 3.
    record_shard(con, MODEL, 3, 2, rows=7, run_id="s2")
    assert recorded_shards(con, MODEL) == {3: {2}}
    problem = missing_shards(recorded_shards(con, MODEL), 3)
    assert "1 of 3 shards" in problem and "missing shard(s) 0, 1" in problem and "DISTILLSET_SHARDS=3" in problem
    assert "missing shard(s) 0, 1" in missing_shards(recorded_shards(con, MODEL), 1)
    assert "last written in 3 shards" in missing_shards(recorded_shards(con, MODEL), 2)

    forget_shards(con, MODEL)
    assert recorded_shards(con, MODEL) == {} and recorded_shards(con, "other-teacher") == {2: {1}}
