"""The judge stage in bounded memory: answers streamed from a Parquet copy, judgments spooled to parts.

The answers to judge (a teacher's ``deduplicated_generations`` with each prompt's reference) are
copied out of the catalog in one short read (``export_answers``), then streamed ``chunk_rows`` at a
time into judge conversations (``JudgmentSpool.conversations``); the judged rows arrive from
``generate(on_rows=...)`` in input order and are parsed into ``judge_scores`` rows
(``judge.judge_scores_frame``) written to Parquet parts (``JudgmentSpool.add``), with the counts the
asset's metadata needs. The catalog takes the parts in one short write at the end, as before.
Memory holds the conversations in flight and one chunk of answers, never the partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from distillset.catalog import Location, connect
from distillset.quality.judge import JUDGE_SCORES_SCHEMA, judge_conversations, judge_scores_frame, score_histogram
from distillset.teacher.rows import Conversation

PREVIEW_ROWS = 20
_ANSWERS = "answers.parquet"
_REFERENCES = "references.parquet"


def export_answers(catalog_path: Location, folder: Path, teacher_model: str) -> None:
    """Copy the partition's answers (in table order) and the pool's references to Parquet files in
    ``folder``, in one short read (plain scans: a join would lose the table's order)."""
    answers, references = _quoted(folder / _ANSWERS), _quoted(folder / _REFERENCES)
    with connect(catalog_path, read_only=True) as con:
        _export(con, answers, references, teacher_model)


def _export(con: duckdb.DuckDBPyConnection, answers: str, references: str, teacher_model: str) -> None:
    con.execute(
        "COPY (SELECT prompt_id, messages_json, request_hash FROM deduplicated_generations "
        f"WHERE teacher_model = ?) TO '{answers}' (FORMAT parquet)",
        [teacher_model],
    )
    con.execute(
        "COPY (SELECT prompt_id, reference FROM prompt_pool WHERE reference IS NOT NULL) "
        f"TO '{references}' (FORMAT parquet)"
    )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


class JudgmentSpool:
    """Judge conversations out, parsed ``judge_scores`` rows in, spooled as Parquet parts.

    ``parts`` are the files to append, in order; ``rows``, ``unjudged``, ``parse_failures``,
    ``histogram`` (``judge.score_histogram``) and ``head`` (the first rows) describe what was written,
    and ``failure_head`` the first unparseable judgments.
    """

    def __init__(self, folder: Path, teacher_model: str, *, chunk_rows: int):
        self.folder = folder
        self.teacher_model = teacher_model
        self.chunk_rows = chunk_rows
        self.parts: list[Path] = []
        self.rows = 0
        self.unjudged = 0
        self.parse_failures = 0
        self.histogram = score_histogram(pl.DataFrame())
        self.head = pl.DataFrame(schema=JUDGE_SCORES_SCHEMA)
        self.failure_head = pl.DataFrame(schema=JUDGE_SCORES_SCHEMA)
        self._answer_hashes: dict[str, str | None] = {}

    def answers(self) -> int:
        """How many answers the exported file holds."""
        return pq.ParquetFile(self.folder / _ANSWERS).metadata.num_rows

    def conversations(self) -> Iterator[Conversation]:
        """The judge conversations of the exported answers, in order, ``chunk_rows`` answers at a time
        (each with its prompt's reference); each answer's request hash waits until its judgment is in."""
        references = self.folder / _REFERENCES
        lookup = duckdb.connect()
        try:
            for batch in pq.ParquetFile(self.folder / _ANSWERS).iter_batches(batch_size=self.chunk_rows):
                lookup.register("_answers", pl.from_arrow(batch).with_row_index("_pos").to_arrow())
                rows = lookup.execute(
                    "SELECT a.prompt_id, a.messages_json, a.request_hash, r.reference FROM _answers AS a "
                    f"LEFT JOIN read_parquet('{_quoted(references)}') AS r ON r.prompt_id = a.prompt_id ORDER BY a._pos"
                ).pl()
                lookup.unregister("_answers")
                hashes = dict(zip(rows["prompt_id"].to_list(), rows["request_hash"].to_list(), strict=True))
                for conversation in judge_conversations(rows):
                    self._answer_hashes[conversation.prompt_id] = hashes[conversation.prompt_id]
                    yield conversation
        finally:
            lookup.close()

    def add(self, judgments: pl.DataFrame) -> None:
        """Parse finished judge rows (``generate``'s ``on_rows``) and spool them."""
        ids = judgments["prompt_id"].to_list()
        answers = pl.DataFrame(
            {"prompt_id": ids, "request_hash": [self._answer_hashes.pop(i, None) for i in ids]},
            schema={"prompt_id": pl.String, "request_hash": pl.String},
        )
        scores = judge_scores_frame(self.teacher_model, answers, judgments)
        path = self.folder / f"judge-{len(self.parts):06d}.parquet"
        scores.write_parquet(path)
        self.parts.append(path)
        self.rows += scores.height
        unjudged = scores.filter(pl.col("judge_score").is_null())
        failed = set(judgments.filter(pl.col("status") != "ok")["request_hash"].to_list())
        failures = unjudged.filter(~pl.col("request_hash").is_in(list(failed)))
        self.unjudged += unjudged.height
        self.parse_failures += failures.height
        for band, count in score_histogram(scores).items():
            self.histogram[band] += count
        if self.head.height < PREVIEW_ROWS:
            self.head = pl.concat([self.head, scores.head(PREVIEW_ROWS - self.head.height)])
        if self.failure_head.height < PREVIEW_ROWS:
            self.failure_head = pl.concat([self.failure_head, failures.head(PREVIEW_ROWS - self.failure_head.height)])
