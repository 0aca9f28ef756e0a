"""Scoring a catalog partition in chunks, and the summary and gates from SQL aggregates.

Protects (issue 19): ``quality_scores`` written chunk by chunk holds exactly the rows, values and
order that scoring the whole partition at once gives, whatever the chunk size (one row, a size that
splits the rows unevenly, more than all rows) and for an empty partition; another teacher's rows
are left alone; the summary and gates computed by SQL over the catalog table equal those of the
frame and the figures polars computes from it.
"""

from __future__ import annotations

import polars as pl
import pytest

from distillset import catalog
from distillset.quality.aggregates import frame_aggregates, partition_aggregates
from distillset.quality.gates import evaluate_gates, gates_of
from distillset.quality.partition import score_partition
from distillset.quality.score import score_frame
from distillset.quality.summary import quality_summary, summary_of
from distillset.settings import QualityGates, QualityThresholds

TEACHER = "teacher/a"
OTHER = "teacher/b"
ANSWERS = [
    ("Paris is the capital of France, and it is known for the Louvre and the Eiffel Tower.", None, "stop"),
    ("I'm sorry, but I can't help with that.", None, "stop"),
    ("48 + 24 = 72.\n#### 72", "#### 72", "stop"),
    ("48 + 24 = 73.\n#### 73", "#### 72", "stop"),
    ("Here is an overview of clips and the context of this topic.", "#### 72", "stop"),
    ("", None, "stop"),
    (None, None, "stop"),
    ("The answer keeps going and going and", None, "length"),
    ("巴黎是法国的首都，以卢浮宫和埃菲尔铁塔闻名。", None, "stop"),
    ("same line here again\n" * 12, None, "stop"),
    ("Contact me at someone@corp.io for details about the capital of France.", None, "stop"),
    ("```python\nprint('never closed')\n", None, "stop"),
]


def _tables(count: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [ANSWERS[i % len(ANSWERS)] for i in range(count)]
    # Ids out of sorted order: the scores must keep the table's order, not the ids'.
    ids = [f"p{(i * 7919) % 1000:03d}-{i}" for i in range(count)]
    generations = pl.DataFrame(
        {
            "teacher_model": [TEACHER] * count,
            "prompt_id": ids,
            "response": [r[0] for r in rows],
            "finish_reason": [r[2] for r in rows],
            "cluster_id": [f"c{i}" for i in range(count)],
        },
        schema_overrides={"response": pl.Utf8},
    )
    # One generation's prompt is missing from the pool: its text and reference score as NULL.
    prompts = pl.DataFrame(
        {
            "prompt_id": ids[1:],
            "prompt_text": [
                "巴黎是哪个国家的首都？" if r[0] and "巴黎" in r[0] else "Tell me about it." for r in rows[1:]
            ],
            "reference": [r[1] for r in rows[1:]],
        },
        schema_overrides={"reference": pl.Utf8},
    )
    return generations, prompts


def _whole(generations: pl.DataFrame, prompts: pl.DataFrame) -> pl.DataFrame:
    """The partition scored as one frame (how quality_scores was computed before streaming)."""
    rows = generations.select("prompt_id", "response", "finish_reason").join(
        prompts.select("prompt_id", "prompt_text", "reference"), on="prompt_id", how="left", maintain_order="left"
    )
    scores = score_frame(rows, thresholds=QualityThresholds(), key_column="prompt_id", extra_patterns=None)
    return scores.select(pl.lit(TEACHER).alias("teacher_model"), pl.all())


def _catalog(tmp_path, generations: pl.DataFrame, prompts: pl.DataFrame, path=None):
    path = path or tmp_path / "catalog.duckdb"
    other = generations.head(3).with_columns(teacher_model=pl.lit(OTHER))
    catalog.replace_table(path, "deduplicated_generations", pl.concat([generations, other]))
    catalog.replace_table(path, "prompt_pool", prompts)
    return path


def _score(path, chunk_rows: int, model: str = TEACHER):
    scored = score_partition(path, model, chunk_rows=chunk_rows, thresholds=QualityThresholds())
    # The spooled copies and parts are gone.
    assert [p.name for p in catalog.local_dir(path).iterdir() if p.name.startswith("quality-")] == []
    return scored


@pytest.mark.parametrize("chunk_rows", [1, 7, 10_000])
def test_chunked_scores_equal_scoring_the_whole_partition(tmp_path, chunk_rows):
    generations, prompts = _tables(40)
    path = _catalog(tmp_path, generations, prompts)
    _score(path, chunk_rows=5, model=OTHER)
    scored = _score(path, chunk_rows=chunk_rows)
    expected = _whole(generations, prompts)
    got = catalog.read_table(path, "quality_scores", "WHERE teacher_model = ?", [TEACHER])
    assert scored.rows == 40 and got.height == 40
    assert got.columns == expected.columns
    assert got.equals(expected)
    assert scored.head.equals(expected.head(10))
    # The other teacher's rows stay.
    assert catalog.count_rows(path, "quality_scores", "WHERE teacher_model = ?", [OTHER]) == 3
    # The rules did fire: refusals, wrong answers, empties are in the set.
    failed = set(expected["failed_rules"].explode().drop_nulls())
    assert {"refusal", "wrong_answer", "no_final_answer", "empty", "truncated", "repetitive"} <= failed


def test_an_empty_partition_writes_no_row_and_the_table_schema(tmp_path):
    generations, prompts = _tables(5)
    path = _catalog(tmp_path, generations.clear(), prompts)
    scored = _score(path, chunk_rows=2)
    assert scored.rows == 0 and scored.head.height == 0
    assert catalog.table_columns(path, "quality_scores") == _whole(generations, prompts).columns
    aggregates = partition_aggregates(path, TEACHER)
    assert aggregates.rows == 0
    assert [g.passed for g in gates_of(aggregates, QualityGates())] == [True, True, True, False]


def test_duplicate_prompt_ids_across_chunks_are_refused(tmp_path):
    generations, prompts = _tables(6)
    generations = pl.concat([generations, generations.head(1)])
    path = _catalog(tmp_path, generations, prompts)
    with pytest.raises(ValueError, match="not unique"):
        _score(path, chunk_rows=2)


def test_summary_and_gates_from_the_catalog_equal_the_frame_and_polars(tmp_path):
    generations, prompts = _tables(60)
    path = _catalog(tmp_path, generations, prompts)
    _score(path, chunk_rows=9)
    frame = _whole(generations, prompts)
    from_catalog = summary_of(partition_aggregates(path, TEACHER))
    assert from_catalog == quality_summary(frame)
    gates = QualityGates(min_verifiable_rows=5)
    assert gates_of(partition_aggregates(path, TEACHER), gates) == evaluate_gates(frame, gates)

    # The figures themselves, computed by polars from the frame.
    score = frame["score"]
    assert from_catalog["rows"] == 60 and from_catalog["passed"] == int(frame["passed"].sum())
    assert from_catalog["mean_score"] == pytest.approx(float(score.mean()), rel=1e-12)
    for name, q in {"min": 0.0, "p25": 0.25, "median": 0.5, "p75": 0.75, "max": 1.0}.items():
        assert from_catalog[name] == pytest.approx(float(score.quantile(q, interpolation="linear")), rel=1e-12)
    bins = (score.clip(0.0, 1.0) * 10 + 1e-9).floor().cast(pl.Int64).clip(0, 9).value_counts()
    assert from_catalog["histogram"] == [int(bins.filter(pl.col("score") == i)["count"].sum()) for i in range(10)]
    rules = frame["failed_rules"].explode().drop_nulls().value_counts()
    for rule, count in rules.iter_rows():
        assert from_catalog["failed_rules"][rule] == count
    results = frame["verifiable_result"].drop_nulls().value_counts()
    for result, count in results.iter_rows():
        assert from_catalog["verifiable"][result] == count
    by_name = {g.name: g for g in gates_of(partition_aggregates(path, TEACHER), gates)}
    assert by_name["refusal_rate"].value == float(frame["is_refusal"].cast(pl.Float64).mean())
    assert by_name["truncation_rate"].value == float(frame["is_truncated"].cast(pl.Float64).mean())
    assert by_name["pass_rate"].value == float(frame["passed"].cast(pl.Float64).mean())


def test_frame_aggregates_of_a_frame_without_rows_or_columns_are_empty():
    assert frame_aggregates(pl.DataFrame()).rows == 0
    assert summary_of(frame_aggregates(pl.DataFrame()))["median"] is None


def test_chunked_scores_on_every_catalog_backend(tmp_path, catalog_location):
    # The file, DuckLake with folder data, DuckLake with S3 data (tests/helpers/catalog.py).
    generations, prompts = _tables(40)
    path = _catalog(tmp_path, generations, prompts, path=catalog_location)
    _score(path, chunk_rows=5, model=OTHER)
    scored = _score(path, chunk_rows=7)
    expected = _whole(generations, prompts)
    got = catalog.read_table(path, "quality_scores", "WHERE teacher_model = ?", [TEACHER])
    assert scored.rows == 40
    assert got.sort("prompt_id").equals(expected.sort("prompt_id"))
    assert catalog.count_rows(path, "quality_scores", "WHERE teacher_model = ?", [OTHER]) == 3
