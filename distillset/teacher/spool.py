"""The teacher stage's rows on their way to the catalog: selected and spilled chunk by chunk.

``generate`` hands its rows over as they finish (``on_rows``); ``SelectionSpool`` gathers them into
chunks of about ``chunk_rows`` rows, runs best-of-N selection on each chunk (every sample of a
prompt is in one chunk, so a chunk selects exactly what the whole table would) and writes the
three results (``teacher_generations``, ``teacher_samples``, ``prompt_pass_rates``) to Parquet
files in a spool folder. The catalog then takes the files in one short write at the end
(``ChunkWriter.append_parquet``), so the catalog's write lock is not held through a long teacher
run, and memory holds a chunk or two, never the table.

Selection runs on one background thread, so the event loop keeps requests in flight while a
chunk is scored; at most one chunk waits for it (the next ``add`` that fills a chunk blocks until
the previous one is written: bounded memory over speed).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from distillset.curation.best_of_n import (
    PASS_RATES_SCHEMA,
    SAMPLES_SCHEMA,
    SelectionPolicy,
    select_samples,
)
from distillset.teacher.rows import GENERATIONS_SCHEMA
from distillset.teacher.summary import summary_of_parts

TABLES = ("teacher_generations", "teacher_samples", "prompt_pass_rates")
SCHEMAS = {
    "teacher_generations": GENERATIONS_SCHEMA,
    "teacher_samples": SAMPLES_SCHEMA,
    "prompt_pass_rates": PASS_RATES_SCHEMA,
}
PREVIEW_ROWS = 20
SELECT_ROWS = 10_000
"""Rows selected at once inside a chunk (each becomes a Python dict while it is selected)."""


@dataclass
class GenerationCounts:
    """What the metadata of ``teacher_generations`` needs, counted chunk by chunk."""

    rows: int = 0
    failed: int = 0
    simulated: int = 0
    errors: Counter = field(default_factory=Counter)
    finish_reasons: Counter = field(default_factory=Counter)
    head: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=GENERATIONS_SCHEMA))

    def add(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        failed = frame.filter(pl.col("status") == "failed")
        self.failed += failed.height
        self.simulated += int(frame["simulated"].sum())
        self.errors.update(str(e) for e in failed["error"].to_list())
        self.finish_reasons.update(str(r) for r in frame["finish_reason"].to_list())
        if self.head.height < PREVIEW_ROWS:
            self.head = pl.concat([self.head, frame.head(PREVIEW_ROWS)]).head(PREVIEW_ROWS)


class SelectionSpool:
    """Selects and spills the teacher's rows in chunks (module docstring).

    Args:
        folder: where the Parquet parts are written (an empty folder the caller removes).
        prompts_of: given a chunk's prompt ids, their ``prompt_id``, ``prompt_text`` and
            ``reference`` (for ranking samples by the quality score).
        policy, thresholds, extra_patterns: as ``select_samples``.
        chunk_rows: rows selected at once.
    """

    def __init__(
        self,
        folder: Path,
        prompts_of: Callable[[list[str]], pl.DataFrame],
        policy: SelectionPolicy,
        *,
        chunk_rows: int,
        thresholds=None,
        extra_patterns: Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.prompts_of = prompts_of
        self.policy = policy
        self.chunk_rows = chunk_rows
        self.thresholds = thresholds
        self.extra_patterns = extra_patterns
        self.parts: dict[str, list[Path]] = {table: [] for table in TABLES}
        self.counts = GenerationCounts()
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distillset-select")
        self._pending: Future | None = None

    def add(self, frame: pl.DataFrame) -> None:
        """Take a frame of rows (``GENERATIONS_SCHEMA``) in input order, whole prompts only."""
        if frame.is_empty():
            return
        self._buffer.append(frame)
        self._buffered += frame.height
        if self._buffered >= self.chunk_rows:
            self._submit()

    def _submit(self) -> None:
        if not self._buffer:
            return
        frames = self._buffer
        self._buffer, self._buffered = [], 0
        if self._pending is not None:
            self._pending.result()  # one chunk in the selector at a time; raises its error here
        self._pending = self._worker.submit(self._select_and_write, frames, len(self.parts["teacher_samples"]))

    def _select_and_write(self, frames: list[pl.DataFrame], number: int) -> None:
        # Selection turns rows into Python dicts: it runs on slices of about SELECT_ROWS rows
        # (whole frames, so whole prompts), and only the compact results make up the part.
        results: dict[str, list[pl.DataFrame]] = {table: [] for table in TABLES}
        for slice_frames in _slices(frames, SELECT_ROWS):
            chunk = pl.concat(slice_frames)
            prompts = self.prompts_of(chunk["prompt_id"].unique(maintain_order=True).to_list())
            selection = select_samples(
                chunk, prompts, self.policy, thresholds=self.thresholds, extra_patterns=self.extra_patterns
            )
            results["teacher_generations"].append(selection.generations)
            results["teacher_samples"].append(selection.samples)
            results["prompt_pass_rates"].append(selection.pass_rates)
        for table, parts in results.items():
            path = self.folder / f"{table}-{number:06d}.parquet"
            frame = pl.concat(parts)
            frame.write_parquet(path)
            self.parts[table].append(path)
            if table == "teacher_generations":
                with self._lock:
                    self.counts.add(frame)

    def close(self) -> dict:
        """Select and write what is left; the best-of-N summary over every chunk.

        Raises:
            Exception: the error of a chunk that failed to be selected or written.
        """
        try:
            self._submit()
            if self._pending is not None:
                self._pending.result()
        finally:
            self._worker.shutdown(wait=True)
        # Counted one part at a time: the parts read back whole were a few hundred MB at 1M prompts.
        return summary_of_parts(self.parts["teacher_samples"], self.parts["prompt_pass_rates"], self.policy)

    def shutdown(self) -> None:
        """Stop the selector thread (after ``close``, or when the run failed and nothing is written)."""
        self._worker.shutdown(wait=True, cancel_futures=True)


def _slices(frames: list[pl.DataFrame], rows: int) -> list[list[pl.DataFrame]]:
    """Consecutive runs of whole frames holding about ``rows`` rows each (at least one frame)."""
    slices: list[list[pl.DataFrame]] = [[]]
    size = 0
    for frame in frames:
        if size >= rows:
            slices.append([])
            size = 0
        slices[-1].append(frame)
        size += frame.height
    return slices
