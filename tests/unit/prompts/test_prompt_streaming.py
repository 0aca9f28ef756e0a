"""Prompt files read as streams, in chunks: the same rows whatever the chunk and block sizes.

Protects (issue 19): a file larger than one chunk reaches the sink in several chunks that add up
to the one-chunk read; a multi-turn conversation whose bytes span blocks, and a chunk that ends
next to it, stay whole; an empty file, and a file of blank lines, give no rows and no empty chunk;
``.jsonl.gz`` is read like its ``.jsonl`` (a corrupt stream keeps the rows before it and is one
reject); Parquet with several row groups and CSV with a quoted multi-line field stream row by
row; the sink's own error is raised, not turned into a reject of the file.
"""

from __future__ import annotations

import gzip
import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillset.prompts.files import read_prompt_chunks, read_prompts

CONVERSATION = {
    "turns": [
        "Write a long story about a lighthouse keeper who befriends a whale. " * 8,
        "Now retell it from the whale's point of view, in exactly five sentences. " * 6,
    ],
    "category": "writing",
}


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _rows(n: int) -> list[dict]:
    rows = [{"prompt": f"Question number {i}: what is {i} plus {i}?"} for i in range(n)]
    rows[n // 2] = CONVERSATION  # a multi-turn row in the middle
    return rows


def _chunked(path, **kwargs) -> tuple[list[tuple[pl.DataFrame, pl.DataFrame]], object]:
    chunks: list[tuple[pl.DataFrame, pl.DataFrame]] = []
    summary = read_prompt_chunks(str(path), lambda p, r: chunks.append((p, r)), **kwargs)
    return chunks, summary


def _without_time(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("ingested_at")


def test_a_file_larger_than_one_chunk_adds_up_to_the_whole_read(tmp_path):
    (tmp_path / "p.jsonl").write_text(_jsonl(_rows(11)) + "not json\n", encoding="utf-8")
    whole = read_prompts(str(tmp_path))
    chunks, summary = _chunked(tmp_path, chunk_rows=3, block_bytes=16)
    assert [p.height for p, _ in chunks] == [3, 3, 3, 2]
    assert all(p.height <= 3 and r.height <= 3 for p, r in chunks)
    streamed = pl.concat([p for p, _ in chunks])
    assert _without_time(streamed).equals(_without_time(whole.prompts))
    assert pl.concat([r for _, r in chunks]).equals(whole.rejects)
    assert summary.prompts == 11 and summary.rejects == 1 and summary.chunks == 4
    assert summary.files["rows_read"].to_list() == [12]
    assert summary.prompt_head.height == 11


@pytest.mark.parametrize("chunk_rows", [1, 5, 6, 7])
def test_a_multi_turn_conversation_spanning_blocks_and_a_chunk_boundary_stays_whole(tmp_path, chunk_rows):
    # Row 6 of 11 is the two-turn conversation (~900 bytes): with 32-byte blocks its line spans
    # ~30 blocks, and chunks of 5, 6 or 7 rows end just before, on or just after it.
    (tmp_path / "p.jsonl").write_text(_jsonl(_rows(11)), encoding="utf-8")
    chunks, _ = _chunked(tmp_path, chunk_rows=chunk_rows, block_bytes=32)
    streamed = pl.concat([p for p, _ in chunks])
    assert streamed.height == 11
    row = streamed.filter(pl.col("source_line") == 6).row(0, named=True)
    assert row["turns"] == CONVERSATION["turns"] and row["source_format"] == "mt_bench"
    assert streamed["source_line"].to_list() == list(range(1, 12))


def test_empty_files_and_blank_chunks_give_no_rows_and_no_empty_chunk(tmp_path):
    (tmp_path / "a_empty.jsonl").write_bytes(b"")
    (tmp_path / "b_blank.jsonl").write_text("\n\n   \n", encoding="utf-8")
    (tmp_path / "c_empty.csv").write_bytes(b"")
    (tmp_path / "d.jsonl").write_text(_jsonl(_rows(2)), encoding="utf-8")
    chunks, summary = _chunked(tmp_path, chunk_rows=2, block_bytes=4)
    assert [p.height for p, _ in chunks] == [2]
    assert summary.files["rows_read"].to_list() == [0, 0, 0, 2]
    (tmp_path / "d.jsonl").unlink()
    chunks, summary = _chunked(tmp_path, chunk_rows=2)
    assert chunks == [] and summary.prompts == 0 and summary.chunks == 0


def test_gzipped_jsonl_reads_like_jsonl_and_a_corrupt_stream_keeps_the_rows_before_it(tmp_path):
    text = _jsonl(_rows(9))
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    (plain / "p.jsonl").write_text(text, encoding="utf-8")
    (packed / "p.jsonl.gz").write_bytes(gzip.compress(text.encode("utf-8")))
    a, b = read_prompts(str(plain)), read_prompts(str(packed), chunk_rows=2, block_bytes=8)
    columns = ["turns", "source_line", "source_format", "prompt_text"]
    assert b.prompts.select(columns).equals(a.prompts.select(columns))
    assert b.files["file_format"].to_list() == ["jsonl.gz"] and b.rejects.is_empty()
    data = gzip.compress(text.encode("utf-8") * 40)
    (packed / "p.jsonl.gz").write_bytes(data[: len(data) // 2])  # cut mid-stream
    # Rows of the blocks decompressed before the break are kept (a 1 MB block would hold them all).
    cut = read_prompts(str(packed), block_bytes=256)
    assert 0 < cut.prompts.height < 9 * 40
    assert cut.rejects["reason"].to_list() == ["unreadable_file"]
    assert "gzip" in cut.rejects["detail"][0]


def test_parquet_row_groups_and_a_csv_field_over_several_lines_stream_row_by_row(tmp_path):
    rows = _rows(7)
    prompts = [r.get("prompt") or "\n".join(r["turns"]) for r in rows]
    table = pa.table({"prompt": prompts, "category": ["c"] * len(prompts)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=2)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 4
    with (tmp_path / "t.csv").open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeffprompt,category\n")
        for prompt in prompts:
            handle.write('"' + prompt.replace('"', '""') + '",c\n')
    chunks, summary = _chunked(tmp_path, chunk_rows=3, block_bytes=16)
    streamed = pl.concat([p for p, _ in chunks])
    for file_format in ("parquet", "csv"):
        rows_of = streamed.filter(pl.col("source_file").str.ends_with(file_format))
        assert rows_of["turns"].list.first().to_list() == prompts
        assert rows_of["source_line"].to_list() == list(range(1, 8))
    assert summary.rejects == 0


def test_the_sinks_error_is_raised_not_recorded_as_a_reject(tmp_path):
    (tmp_path / "p.jsonl").write_text(_jsonl(_rows(5)), encoding="utf-8")

    def failing(prompts, rejects):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        read_prompt_chunks(str(tmp_path), failing, chunk_rows=2)
