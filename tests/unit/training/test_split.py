"""The train/validation split is keyed by the prompt, never by the answer.

Protects (issue 11): after a change of sampling (a new temperature: new request hashes, new example
ids) or of teacher, every prompt stays on the side of the split it was on, so a validation prompt
never moves into train between versions.
"""

from __future__ import annotations

import polars as pl

from distillset import ids
from distillset.training.examples import build_training_examples


def _inputs(teacher: str, temperature: float, count: int = 300):
    prompt_ids = [ids.prompt_id("sha-of-file", line) for line in range(1, count + 1)]
    texts = [f"Question {i}: what is {i} times three?" for i in range(count)]
    messages = [[{"role": "user", "content": t}] for t in texts]
    request_hashes = [ids.request_hash(teacher, m, {"temperature": temperature}) for m in messages]
    generations = pl.DataFrame(
        {
            "teacher_model": [teacher] * count,
            "prompt_id": prompt_ids,
            "messages_json": [
                ids.canonical_json([*m, {"role": "assistant", "content": f"{i * 3} (t={temperature})"}])
                for i, m in enumerate(messages)
            ],
            "request_hash": request_hashes,
            "generated_at": [None] * count,
            "cluster_id": [f"c{i}" for i in range(count)],
            "served_model": [teacher] * count,
            "simulated": [False] * count,
        }
    )
    scores = pl.DataFrame({"prompt_id": prompt_ids, "score": [0.9] * count, "passed": [True] * count})
    prompts = pl.DataFrame(
        {
            "prompt_id": prompt_ids,
            "text_hash": [ids.sha256_hex(ids.normalize_text(t)) for t in texts],
            "source_file": ["f.jsonl"] * count,
            "source_line": list(range(1, count + 1)),
            "source_sha256": ["sha-of-file"] * count,
            "license": ["MIT"] * count,
        }
    )
    return generations, scores, prompts


def _sides(teacher: str, temperature: float) -> pl.DataFrame:
    return build_training_examples(*_inputs(teacher, temperature), validation_fraction=0.05).select(
        "prompt_id", "example_id", "split"
    )


def test_a_prompt_keeps_its_side_across_a_sampling_change_and_a_teacher_change():
    before = _sides("meta-llama/Llama-3.1-405B-Instruct", 0.7)
    resampled = _sides("meta-llama/Llama-3.1-405B-Instruct", 0.2)
    other_teacher = _sides("meta-llama/Llama-3.3-70B-Instruct", 0.7)
    assert 5 <= (before["split"] == "validation").sum() <= 30
    for after in (resampled, other_teacher):
        # New answers, new example ids ...
        assert set(after["example_id"]).isdisjoint(before["example_id"])
        # ... and every prompt on the same side as before.
        joined = before.join(after, on="prompt_id", suffix="_after")
        assert joined.height == before.height
        moved = joined.filter(pl.col("split") != pl.col("split_after"))
        assert moved.height == 0, f"{moved.height} prompts changed side"


def test_rows_carry_their_teacher_origin_served_model_and_run():
    generations, scores, prompts = _inputs("meta-llama/Llama-3.1-405B-Instruct", 0.7, count=4)
    generations = generations.with_columns(simulated=pl.Series([True, False, True, False]))
    rows = build_training_examples(generations, scores, prompts, validation_fraction=0.0, run_id="run-42")
    by_prompt = {r["prompt_id"]: r for r in rows.iter_rows(named=True)}
    got = [(by_prompt[p]["teacher_origin"], by_prompt[p]["served_model"]) for p in generations["prompt_id"]]
    assert got == [
        ("simulated", "meta-llama/Llama-3.1-405B-Instruct"),
        ("remote", "meta-llama/Llama-3.1-405B-Instruct"),
        ("simulated", "meta-llama/Llama-3.1-405B-Instruct"),
        ("remote", "meta-llama/Llama-3.1-405B-Instruct"),
    ]
    assert set(rows["run_id"]) == {"run-42"}
