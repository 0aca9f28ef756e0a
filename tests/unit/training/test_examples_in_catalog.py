"""training_examples built inside the catalog, in chunks, and its checks run in SQL or per chunk.

Protects (issue 19): the rows written chunk by chunk are exactly ``build_training_examples`` of the
same tables (rows, columns, order, example ids, split, blended judge scores) whatever the chunk
size, for an empty partition, and when the split's fallback (no row hashed into validation) must
pick its row across chunks; another teacher's rows are left alone; the split-overlap and
contamination checks over the catalog find what the frame versions find.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from distillset import catalog, ids
from distillset.curation.decontam import Benchmark, BenchmarkIndex
from distillset.training import partition
from distillset.training.examples import TRAINING_EXAMPLES_COLUMNS, build_training_examples
from distillset.training.partition import build_examples_in_catalog, contaminated_examples, examples_split_overlap
from distillset.training.split import split_overlap

TEACHER = "teacher/a"
OTHER = "teacher/b"
LEAKED = "A farmer has 17 sheep and all but 9 run away; how many sheep does the farmer have left at the end of the day"


def _tables(count: int) -> dict[str, pl.DataFrame]:
    prompt_ids = [ids.prompt_id("sha", (line * 7919) % 997) for line in range(count)]
    texts = [f"Question {i}: what is {i} times three?" for i in range(count)]
    texts[3 % count] = LEAKED
    generations = pl.DataFrame(
        {
            "teacher_model": [TEACHER] * count,
            "prompt_id": prompt_ids,
            "status": ["ok"] * count,
            "messages_json": [
                ids.canonical_json([{"role": "user", "content": t}, {"role": "assistant", "content": f"{i * 3}"}])
                for i, t in enumerate(texts)
            ],
            "response": [f"{i * 3}" for i in range(count)],
            "request_hash": [f"h{i}" for i in range(count)],
            "served_model": [TEACHER] * count,
            "simulated": [i % 3 == 0 for i in range(count)],
            "generated_at": [datetime(2026, 1, 1, tzinfo=UTC)] * count,
            "cluster_id": [f"c{i}" for i in range(count)],
        }
    )
    scores = pl.DataFrame(
        {
            "teacher_model": [TEACHER] * count,
            "prompt_id": prompt_ids,
            "score": [round(0.5 + (i % 7) / 20, 4) for i in range(count)],
            "passed": [i % 5 != 4 for i in range(count)],
        }
    )
    # The last prompt is missing from the pool (no provenance, split by prompt_id), two share a text.
    pool_ids = prompt_ids[:-1]
    prompts = pl.DataFrame(
        {
            "prompt_id": pool_ids,
            "text_hash": [ids.sha256_hex(ids.normalize_text(texts[i if i != 1 else 0])) for i in range(len(pool_ids))],
            "source_file": ["f.jsonl"] * len(pool_ids),
            "source_line": list(range(1, len(pool_ids) + 1)),
            "source_sha256": ["sha"] * len(pool_ids),
            "license": ["MIT"] * len(pool_ids),
            "prompt_text": [texts[i] for i in range(len(pool_ids))],
        }
    )
    judgments = pl.DataFrame(
        {
            "teacher_model": [TEACHER] * count,
            "prompt_id": prompt_ids,
            "judge_score": [float(1 + i % 10) for i in range(count)],
            # Every fourth judgment is of an older answer: it must not count.
            "answer_request_hash": [f"h{i}" if i % 4 else "old" for i in range(count)],
        }
    )
    return {"generations": generations, "scores": scores, "prompts": prompts, "judgments": judgments}


def _catalog(tmp_path, tables: dict[str, pl.DataFrame], *, judged: bool, path=None):
    path = path or tmp_path / "catalog.duckdb"
    other = {k: v.head(4).with_columns(teacher_model=pl.lit(OTHER)) for k, v in tables.items() if k != "prompts"}
    names = {"generations": "deduplicated_generations", "scores": "quality_scores", "judgments": "judge_scores"}
    for key, table in names.items():
        if key == "judgments" and not judged:
            continue
        catalog.replace_table(path, table, pl.concat([tables[key], other[key]]))
    catalog.replace_table(path, "prompt_pool", tables["prompts"])
    return path


def _build(path, chunk_rows: int, model: str = TEACHER, **options):
    with catalog.write_chunks(path) as writer:
        return build_examples_in_catalog(writer, model, chunk_rows=chunk_rows, run_id="run-1", **options)


def _expected(path, *, judged: bool, **options) -> pl.DataFrame:
    """build_training_examples of the partition's frames as read from the catalog (how the asset built them)."""

    def read(table: str) -> pl.DataFrame:
        return catalog.read_table(path, table, "WHERE teacher_model = ?", [TEACHER])

    return build_training_examples(
        read("deduplicated_generations"),
        read("quality_scores"),
        catalog.read_table(path, "prompt_pool"),
        judgments=read("judge_scores") if judged else None,
        run_id="run-1",
        **options,
    )


def _written(path, model: str = TEACHER) -> pl.DataFrame:
    return catalog.read_table(path, "training_examples", "WHERE teacher_model = ?", [model])


@pytest.mark.parametrize("chunk_rows", [1, 7, 10_000])
@pytest.mark.parametrize("judged", [False, True])
def test_chunked_examples_equal_building_them_from_frames(tmp_path, chunk_rows, judged):
    tables = _tables(60)
    path = _catalog(tmp_path, tables, judged=judged)
    options = {"validation_fraction": 0.2, "judge_weight": 0.4, "judge_min_score": 3.0 if judged else None}
    _build(path, chunk_rows=3, model=OTHER, **options)
    written = _build(path, chunk_rows=chunk_rows, **options)
    expected = _expected(path, judged=judged, **options)
    got = _written(path)
    assert got.columns == TRAINING_EXAMPLES_COLUMNS
    assert got.equals(expected)
    assert written.rows == expected.height and written.head.equals(expected.head(10))
    assert written.splits == dict(expected["split"].value_counts().iter_rows())
    assert written.judgments == (60 if judged else 0)
    assert {"train", "validation"} == set(got["split"])
    assert _written(path, OTHER).height > 0
    if judged:
        # Low judgments were left out; the blend changed scores.
        assert expected.height < tables["scores"]["passed"].sum()


@pytest.mark.parametrize("chunk_rows", [1, 2, 100])
def test_the_split_fallback_picks_the_same_row_across_chunks(tmp_path, chunk_rows):
    tables = _tables(6)
    path = _catalog(tmp_path, tables, judged=False)
    # A fraction so small that the hash puts no row in validation: one prompt's rows go there.
    _build(path, chunk_rows=chunk_rows, validation_fraction=1e-9)
    expected = _expected(path, judged=False, validation_fraction=1e-9)
    assert (expected["split"] == "validation").sum() >= 1
    assert _written(path).equals(expected)


def test_an_empty_partition_writes_no_example_and_the_columns(tmp_path):
    tables = _tables(5)
    tables["generations"] = tables["generations"].clear()
    path = _catalog(tmp_path, tables, judged=False)
    written = _build(path, chunk_rows=2, validation_fraction=0.1)
    assert written.rows == 0 and written.splits == {} and written.head.columns == TRAINING_EXAMPLES_COLUMNS
    assert catalog.table_columns(path, "training_examples") == TRAINING_EXAMPLES_COLUMNS


def test_split_overlap_and_contamination_over_the_catalog_equal_the_frame_checks(tmp_path):
    tables = _tables(40)
    path = _catalog(tmp_path, tables, judged=False)
    _build(path, chunk_rows=7, validation_fraction=0.3)
    examples = _written(path)
    assert (
        examples_split_overlap(path, TEACHER)
        == split_overlap(examples)
        == dict.fromkeys(("example_id", "prompt_id", "messages_json"), 0)
    )
    # A leak: one validation row copied into train (same example, prompt and conversation).
    leaked = examples.filter(pl.col("split") == "validation").head(1).with_columns(split=pl.lit("train"))
    catalog.replace_partition(
        path, "training_examples", pl.concat([examples, leaked]), column="teacher_model", value=TEACHER
    )
    both = _written(path)
    assert (
        examples_split_overlap(path, TEACHER)
        == split_overlap(both)
        == dict.fromkeys(("example_id", "prompt_id", "messages_json"), 1)
    )

    bench = tmp_path / "bench.jsonl"
    bench.write_text(f'{{"question": "{LEAKED}"}}\n')
    index = BenchmarkIndex.build([Benchmark("mybench", bench, ("question",), "MIT")])
    whole = index.find(both["example_id"].to_list(), both["messages_json"].to_list())
    assert whole.height == 1
    for chunk_rows in (1, 6, 1000):
        assert contaminated_examples(path, TEACHER, index, chunk_rows=chunk_rows).equals(whole)
    assert contaminated_examples(tmp_path / "missing.duckdb", TEACHER, index, chunk_rows=5).height == 0
    assert examples_split_overlap(tmp_path / "missing.duckdb", TEACHER) == dict.fromkeys(
        ("example_id", "prompt_id", "messages_json"), 0
    )


@pytest.mark.parametrize("range_rows", [1, 4, 59, 60, 61])
def test_examples_sorted_one_prompt_id_range_at_a_time_equal_one_sort(tmp_path, monkeypatch, range_rows):
    # One sort of the whole joined partition ran out of DuckDB's 256 MB at 300k prompts; ranges of
    # prompt ids (boundaries inside, on and past the 60 rows) must give the same rows in the same order.
    monkeypatch.setattr(partition, "RANGE_ROWS", range_rows)
    path = _catalog(tmp_path, _tables(60), judged=False)
    options = {"validation_fraction": 0.2}
    _build(path, chunk_rows=7, **options)
    assert _written(path).equals(_expected(path, judged=False, **options))


@pytest.mark.parametrize("judged", [False, True])
def test_chunked_examples_on_every_catalog_backend(tmp_path, catalog_location, judged):
    # The file, DuckLake with folder data, DuckLake with S3 data (tests/helpers/catalog.py).
    tables = _tables(30)
    path = _catalog(tmp_path, tables, judged=judged, path=catalog_location)
    options = {"validation_fraction": 0.2, "judge_weight": 0.4, "judge_min_score": 3.0 if judged else None}
    _build(path, chunk_rows=3, model=OTHER, **options)
    written = _build(path, chunk_rows=7, **options)
    expected = _expected(path, judged=judged, **options)
    got = _written(path)
    assert got.columns == TRAINING_EXAMPLES_COLUMNS
    assert got.sort("example_id").equals(expected.sort("example_id"))
    assert written.rows == expected.height > 0
    assert _written(path, OTHER).height > 0
