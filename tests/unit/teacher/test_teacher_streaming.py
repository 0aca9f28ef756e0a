"""The teacher stage's rows leave it in chunks: the same selection as the whole table, bounded memory.

Protects (issue 19): ``generate(on_rows=...)`` hands rows over as they finish, in input order with
every sample of a prompt in one frame, and keeps none; ``SelectionSpool`` selecting chunk by
chunk (chunks far smaller than the run) writes exactly the rows and the summary that
``select_samples`` over the whole table gives (the summary as SQL over the
parts, ``best_of_n.parquet_selection_summary``); no rows, no parts, and the empty summary.
"""

from __future__ import annotations

import polars as pl
import pytest
from test_best_of_n import _endpoint, _number, _settings, answer_key, gsm8k, gsm8k_conversations

from distillset.curation.best_of_n import SelectionPolicy, select_samples, selection_summary
from distillset.simulator.server import TeacherSimulator
from distillset.teacher import rows as rows_module
from distillset.teacher import spool as spool_module
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import GENERATIONS_SCHEMA
from distillset.teacher.spool import SelectionSpool


def _prompts(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "prompt_id": [f"q{i}" for i in range(len(rows))],
            "prompt_text": [r["question"] for r in rows],
            "reference": [_number(r["answer"]) for r in rows],
        }
    )


@pytest.mark.parametrize(("chunk_rows", "select_rows"), [(1, 10_000), (13, 4), (1000, 7)])
def test_chunked_selection_equals_selecting_the_whole_table(tmp_path, monkeypatch, chunk_rows, select_rows):
    monkeypatch.setattr(rows_module, "FRAME_CHUNK", 5)  # frames of ~5 rows: many chunk boundaries
    monkeypatch.setattr(spool_module, "SELECT_ROWS", select_rows)  # slices inside a chunk
    rows = gsm8k(40)
    prompts = _prompts(rows)
    policy = SelectionPolicy(samples_per_prompt=4, max_answers_per_prompt=1)
    frames: list[pl.DataFrame] = []
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()

    def prompts_of(ids: list[str]) -> pl.DataFrame:
        return prompts.filter(pl.col("prompt_id").is_in(ids))

    spool = SelectionSpool(spool_dir, prompts_of, policy, chunk_rows=chunk_rows)

    def take(frame: pl.DataFrame) -> None:
        frames.append(frame)
        spool.add(frame)

    with TeacherSimulator(answer_key=answer_key(rows), accuracy=0.5) as sim:
        result = generate(
            gsm8k_conversations(rows), _settings(4), _endpoint(sim), Ledger(tmp_path / "l.sqlite"), on_rows=take
        )
    summary = spool.close()
    assert result.generations.is_empty()  # nothing kept by generate itself
    whole = pl.concat(frames)
    assert whole["prompt_id"].unique(maintain_order=True).to_list() == [f"q{i}" for i in range(40)]
    assert whole.height > 40  # several samples for some prompts
    seen: set[str] = set()
    for frame in frames:  # a prompt's samples never straddle two frames
        ids = set(frame["prompt_id"].to_list())
        assert not ids & seen
        seen |= ids
    expected = select_samples(whole, prompts, policy)
    if chunk_rows < 1000:
        assert len(spool.parts["teacher_samples"]) > 1
    for table, frame in (
        ("teacher_generations", expected.generations),
        ("teacher_samples", expected.samples),
        ("prompt_pass_rates", expected.pass_rates),
    ):
        assert pl.read_parquet(spool.parts[table]).equals(frame), table
    assert summary == expected.summary
    assert spool.counts.rows == expected.generations.height


def test_no_rows_no_parts(tmp_path):
    spool = SelectionSpool(tmp_path, lambda ids: pl.DataFrame(), SelectionPolicy(), chunk_rows=10)
    summary = spool.close()
    assert all(not parts for parts in spool.parts.values())
    assert summary["prompts"] == 0 and spool.counts.rows == 0
    empty = select_samples(pl.DataFrame(schema=GENERATIONS_SCHEMA), pl.DataFrame(), SelectionPolicy())
    assert summary == selection_summary(empty.samples, empty.pass_rates, SelectionPolicy())
