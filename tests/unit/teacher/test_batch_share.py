"""``batch_share``: the calls behind a version, and how many a provider batch answered."""

from __future__ import annotations

from distillset import ids
from distillset.settings.tree import TeacherSettings
from distillset.teacher.batch.share import batch_share
from distillset.teacher.ledger import Ledger, LedgerAnswer
from helpers.ledger import ledger_answer

MODEL = "test/model"


def _answer(text: str) -> LedgerAnswer:
    messages = [{"role": "user", "content": text}]
    return ledger_answer(
        ids.request_hash(MODEL, messages, {}),
        model=MODEL,
        messages_json=ids.canonical_json(messages),
        content=f"answer to {text}",
        prompt_tokens=100,
        completion_tokens=200,
        latency_ms=0.0,
        endpoint="test",
        run_id="test",
        served_model=MODEL,
    )


def test_batch_share_counts_every_call_and_only_the_batch_answers(tmp_path):
    settings = TeacherSettings()
    answers = [_answer(f"question {i}") for i in range(2000)]  # more than one lookup chunk of keys
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        ledger.merge(answers, [])
        keys = [a.request_hash for a in answers]
        # No batch ever answered: every call is counted, none as a batch answer.
        assert batch_share(ledger, keys, settings, distinct=True) == {
            "calls": 2000,
            "answers": 0,
            "cost_usd": 0.0,
            "price_factor": settings.batch_price_factor,
        }
        assert batch_share(ledger, keys + keys[:10], settings)["calls"] == 2000
        origin = ledger.query("SELECT origin FROM answers LIMIT 1")[0][0]
        batched = keys[:3] + keys[-2:]

        def answered(session) -> None:
            for key in batched:
                session.execute(
                    "INSERT INTO batch_lines (token, request_hash, origin, messages_json, sampling_json, state) "
                    "VALUES (?, ?, ?, '[]', '{}', 'answered')",
                    ["batch-1", key, origin],
                )

        ledger.transaction("test batch lines", answered)
        share = batch_share(ledger, keys, settings, distinct=True)
        assert (share["calls"], share["answers"]) == (2000, 5)
        online = 5 * (100 * settings.price_input_per_mtok + 200 * settings.price_output_per_mtok) / 1e6
        assert share["cost_usd"] == round(online * settings.batch_price_factor, 6)
    finally:
        ledger.close()
