"""The first pass over a version's rows: checks, content hash and the figures of manifest and card.

Everything here is a streaming counter: memory holds one chunk, the set of (source file, license)
pairs, the teacher ids, a language sample and the quality scores as one float array (8 bytes a row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from distillset.publish.card import guess_languages
from distillset.publish.locations import relative_source
from distillset.publish.rows import ContentHasher, ProvenanceCounter, RowChecks, check_columns, normalized
from distillset.publish.source import ExampleSource

LANGUAGE_SAMPLE = 2000  # rows read to guess the card's language: enough to tell a script


class SourceChangedError(RuntimeError):
    """The rows changed between the publisher's two passes (the catalog was rewritten meanwhile)."""


class SourceShower:
    """Rows as a version shows them: normalized columns, ``source_file`` relative to the prompts."""

    def __init__(self, prompts_url: str | None):
        self._prompts_url = prompts_url
        self._shown: dict[str | None, str | None] = {}

    def __call__(self, rows: pl.DataFrame) -> pl.DataFrame:
        rows = normalized(rows)
        for source in rows["source_file"].unique().to_list():
            if source not in self._shown:
                self._shown[source] = relative_source(source, self._prompts_url)
        mapping = {k: v for k, v in self._shown.items() if k is not None}
        return rows.with_columns(
            pl.col("source_file").replace_strict(mapping, default=None, return_dtype=pl.String).alias("source_file")
        )


def shown_chunks(source: ExampleSource, prompts_url: str | None) -> Iterator[pl.DataFrame]:
    """The source's rows as a version shows them (``SourceShower``), chunk by chunk."""
    show = SourceShower(prompts_url)
    for chunk in source.chunks():
        yield show(chunk)


@dataclass
class RowSummary:
    """What the first pass learned about the rows."""

    rows: int = 0
    split_counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "validation": 0})
    teacher_models: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    source_licenses: dict[str, str] = field(default_factory=dict)
    language_texts: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    hasher: ContentHasher = field(default_factory=ContentHasher)

    def digest(self, formats: list[str]) -> str:
        return self.hasher.hexdigest(formats)

    def languages(self) -> list[str]:
        return guess_languages(self.language_texts)


def summarize(chunks: Iterator[pl.DataFrame], columns: list[str]) -> RowSummary:
    """Check every row (``RowChecks``), hash the content and count the figures, in one pass.

    Raises:
        ValueError: a missing column, no rows, or a row ``RowChecks`` refuses.
    """
    check_columns(columns)
    summary = RowSummary()
    checks = RowChecks()
    origins = ProvenanceCounter()
    teachers: set[str] = set()
    licenses: set[tuple[str, str]] = set()
    scores: list[np.ndarray] = []
    for chunk in chunks:
        checks.check(chunk)
        summary.hasher.update(chunk)
        origins.add(chunk)
        for split, n in chunk["split"].value_counts(name="n").iter_rows():
            summary.split_counts[split] = summary.split_counts.get(split, 0) + int(n)
        teachers.update(chunk["teacher_model"].unique().to_list())
        pairs = chunk.select(pl.col("source_file").cast(pl.String), pl.col("license").cast(pl.String)).unique()
        licenses.update((str(s), str(lic) if lic is not None else "unknown") for s, lic in pairs.iter_rows())
        if len(summary.language_texts) < LANGUAGE_SAMPLE:
            for raw in chunk["messages_json"].head(LANGUAGE_SAMPLE - len(summary.language_texts)).to_list():
                summary.language_texts.append(" ".join(m.get("content") or "" for m in json.loads(raw)))
        values = chunk["quality_score"].cast(pl.Float64, strict=False).drop_nulls().to_numpy()
        # A copy: the array may be a view that keeps the whole chunk's Arrow buffers alive (1M rows
        # held 650 MB of chunks through their scores).
        scores.append(np.array(values, dtype=np.float64, copy=True))
    checks.finish()
    summary.rows = checks.rows
    summary.teacher_models = sorted(teachers)
    summary.provenance = origins.result()
    # One license per source file; a file seen with two licenses keeps the last in sorted order.
    summary.source_licenses = dict(sorted(licenses))
    summary.scores = np.sort(np.concatenate(scores)) if scores else np.empty(0)
    return summary
