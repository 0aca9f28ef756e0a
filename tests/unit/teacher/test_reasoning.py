"""Reasoning traces are stored apart from the answer (fields or a leading <think> block); a trace cut
by ``length`` leaves no answer and is never published; the export puts it back only when asked."""

from __future__ import annotations

import json

import polars as pl
import pytest

from distillset.curation.best_of_n import SelectionPolicy, select_samples
from distillset.quality.score import score_frame
from distillset.settings import SamplingSettings, TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.reasoning import split_reasoning, with_reasoning
from distillset.teacher.rows import Conversation


def test_split_reasoning_shapes():
    assert split_reasoning("  The answer.  ") == ("The answer.", None)
    assert split_reasoning("<think>\nstep 1\n</think>\n\nThe answer.") == ("The answer.", "step 1")
    assert split_reasoning("<think>cut mid-way") == ("", "cut mid-way")
    assert split_reasoning("Answer", {"reasoning_content": " why "}) == ("Answer", "why")
    assert split_reasoning("Answer", {"reasoning": "why"}) == ("Answer", "why")
    # A <think> later in the answer is part of the answer (only a leading block is a trace).
    assert split_reasoning("Use <think> tags like </think> this")[1] is None
    assert with_reasoning("A", "R") == "<think>\nR\n</think>\n\nA"
    assert with_reasoning("A", None) == "A"


def _convs(n: int) -> list[Conversation]:
    return [Conversation(f"p{i}", None, [f"Describe mountain range number {i} in detail."]) for i in range(n)]


@pytest.mark.parametrize("mode", ["reasoning_content", "reasoning", "think"])
def test_trace_is_stored_apart_and_exported_only_when_asked(tmp_path, mode):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator(reasoning=mode) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(_convs(5), TeacherSettings(), endpoint, ledger)
    rows = result.generations
    assert rows["reasoning"].null_count() == 0
    assert not rows["response"].str.contains("<think>").any()
    assert (rows["response"] == rows["response"].str.strip_chars()).all()
    stored = ledger.get(rows["request_hash"][0], origin="simulated")
    assert stored.reasoning == rows["reasoning"][0] and "<think>" not in stored.content
    prompts = pl.DataFrame({"prompt_id": [f"p{i}" for i in range(5)], "prompt_text": ["x"] * 5})
    plain = select_samples(rows, prompts, SelectionPolicy()).generations
    last = [json.loads(m)[-1]["content"] for m in plain["messages_json"]]
    assert last == rows["response"].to_list()  # the answer verbatim
    exported = select_samples(rows, prompts, SelectionPolicy(export_reasoning=True)).generations
    for message, reasoning, response in zip(
        exported["messages_json"], rows["reasoning"], rows["response"], strict=True
    ):
        assert json.loads(message)[-1]["content"] == f"<think>\n{reasoning}\n</think>\n\n{response}"


def test_a_trace_cut_by_length_is_stored_truncated_and_never_published(tmp_path):
    # Six tokens: the <think> block never closes, so there is no answer at all.
    settings = TeacherSettings(sampling=SamplingSettings(max_tokens=6))
    with TeacherSimulator(reasoning="think") as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(_convs(3), settings, endpoint, Ledger(tmp_path / "l.sqlite"))
    rows = result.generations
    assert rows["status"].to_list() == ["ok"] * 3  # paid, stored: a rerun would not pay again
    assert rows["finish_reason"].to_list() == ["length"] * 3
    assert rows["response"].to_list() == [""] * 3
    prompts = pl.DataFrame({"prompt_id": [f"p{i}" for i in range(3)], "prompt_text": ["x"] * 3})
    selection = select_samples(rows, prompts, SelectionPolicy())
    # Kept only so the quality stage sees (and fails) the truncation; the drop reason says so.
    assert set(selection.samples["drop_reason"].drop_nulls().to_list()) <= {"truncated"}
    assert (selection.generations["finish_reason"] == "length").all()
    scores = score_frame(
        selection.generations.select("prompt_id", "response", "finish_reason").with_columns(
            pl.lit("Describe a mountain range.").alias("prompt_text")
        ),
        key_column="prompt_id",
    )
    assert not scores["passed"].any()  # the quality rules fail it: it is never published
