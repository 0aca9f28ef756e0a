"""`distillset explain` lists every best-of-N sample of a prompt (verdict, reason, kept or why not);
a prompt with nothing kept says why; the card and manifest report the sampling policy and outcome."""

from __future__ import annotations

import polars as pl

from distillset import catalog
from distillset.audit.explain import explain
from distillset.cli.explain import format_explanation
from distillset.curation.best_of_n import policy_of, select_samples
from distillset.curation.generations import deduplicate_generations
from distillset.curation.near_dedup import NearDupParams
from distillset.publish.card import best_of_n_lines
from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation
from distillset.training.best_of_n import best_of_n_report
from distillset.verify import VerifiableTask

QUESTIONS = [
    f"A farmer has {10 + i} cows and buys {i + 2} more each week. How many cows after one week?" for i in range(12)
]


def _world(tmp_path, accuracy: float):
    settings = TeacherSettings(samples_per_prompt=3, max_concurrency=8)
    convs = [
        Conversation(f"q{i}", None, [q], task=VerifiableTask.math(f"#### {10 + i + i + 2}"))
        for i, q in enumerate(QUESTIONS)
    ]
    key = {q: str(10 + i + i + 2) for i, q in enumerate(QUESTIONS)}
    with TeacherSimulator(answer_key=key, accuracy=accuracy, models=[settings.model]) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(convs, settings, endpoint, Ledger(tmp_path / "ledger.sqlite"))
    prompts = pl.DataFrame({"prompt_id": [c.prompt_id for c in convs], "prompt_text": QUESTIONS})
    selection = select_samples(result.generations, prompts, policy_of(settings))
    path = tmp_path / "catalog.duckdb"
    model = settings.model
    for table, frame in (
        ("teacher_samples", selection.samples),
        ("prompt_pass_rates", selection.pass_rates),
        ("teacher_generations", selection.generations),
    ):
        catalog.replace_partition(path, table, frame, column="teacher_model", value=model)
    _, drops = deduplicate_generations(selection.generations, prompts, near_dup=NearDupParams())
    catalog.replace_partition(path, "generation_drops", drops, column="teacher_model", value=model)
    return path, settings, selection


def test_explain_lists_every_sample_and_why_nothing_was_kept(tmp_path):
    path, _, selection = _world(tmp_path, accuracy=0.0)
    explanation = explain(path, None, "q0")
    assert [s["sample_index"] for s in explanation.samples] == [0, 1, 2]
    assert all(s["verdict"] == "wrong" and s["kept"] is False for s in explanation.samples)
    assert {s["drop_reason"] for s in explanation.samples} == {"wrong"}
    assert explanation.status == "dropped"
    assert any("no_verified_answer" in reason and "none of 3 sample" in reason for reason in explanation.reasons)
    text = format_explanation(explanation)
    assert "sample 0: wrong (wrong_answer): expected" in text and "dropped: wrong" in text


def test_explain_marks_the_kept_sample_and_the_card_reports_the_policy(tmp_path):
    path, settings, selection = _world(tmp_path, accuracy=1.0)
    explanation = explain(path, None, "q3")
    assert len(explanation.samples) == 1  # early stop: the first sample passed
    assert explanation.samples[0]["kept"] is True and explanation.samples[0]["selection"] == "verified"
    assert "KEPT (verified)" in format_explanation(explanation)
    report = best_of_n_report(path, settings)
    assert report["policy"]["samples_per_prompt"] == 3 and report["policy"]["early_stop"] is True
    assert report["coverage"] == 1.0 and report["samples_paid_per_prompt"] == 1.0
    assert report["verifiers"]["math"]["pass_rate"] == 1.0
    lines = "\n".join(best_of_n_lines(report))
    assert "up to N=3 samples per prompt, at most k=1 published, early stop" in lines
    assert "coverage 100.0%" in lines and "Verifier `math`: 12 of 12 samples correct" in lines
    assert "| 0.9-1.0 | 12 |" in lines
