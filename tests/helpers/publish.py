"""Training example frames and publishing races shared by the publishing tests (local and S3)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import hashlib
import json
import threading

import polars as pl

from distillset import ids
from distillset.publish.protocol import PublishResult, publish_training_set
from distillset.publish.reader import list_versions, verify_version
from distillset.publish.rows import EXAMPLE_COLUMNS, content_hash
from distillset.training.split import assign_split

LLAMA = "meta-llama/Llama-3.1-405B-Instruct"

# The data files of a version published in every format (the card, README.md, comes on top).
DATA_FILES = {
    "train.jsonl",
    "validation.jsonl",
    "train.parquet",
    "validation.parquet",
    "data.parquet",
    "sharegpt_train.jsonl",
    "sharegpt_validation.jsonl",
    "alpaca_train.jsonl",
    "alpaca_validation.jsonl",
}


def make_examples(
    count: int,
    *,
    variant: str = "",
    teacher: str = LLAMA,
    license: str = "MIT",
    source_file: str = "prompts/sample.jsonl",
    simulated: bool = True,
) -> pl.DataFrame:
    """``count`` training examples; every third one is a two-turn conversation."""
    rows = []
    for i in range(count):
        messages = [{"role": "system", "content": "Be concise."}] if i % 4 == 1 else []
        messages += [
            {"role": "user", "content": f"Question {i}{variant}: what is {i} + {i}?"},
            {"role": "assistant", "content": f"{i} + {i} = {2 * i}."},
        ]
        if i % 3 == 0:
            messages += [
                {"role": "user", "content": f"And times two{variant}?"},
                {"role": "assistant", "content": f"{4 * i}."},
            ]
        source_sha = hashlib.sha256(source_file.encode()).hexdigest()
        prompt_id = ids.prompt_id(source_sha, i + 1)
        request_hash = ids.request_hash(teacher, messages[:-1], {"temperature": 0.7})
        rows.append(
            {
                "example_id": ids.example_id(teacher, prompt_id, request_hash),
                "prompt_id": prompt_id,
                "teacher_model": teacher,
                "messages_json": json.dumps(messages, ensure_ascii=False),
                "source_file": source_file,
                "source_line": i + 1,
                "source_sha256": source_sha,
                "license": license,
                "request_hash": request_hash,
                "generated_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                "quality_score": 0.5 + (i % 5) / 10,
                "cluster_id": f"c{i}",
                "simulated": simulated,
                "teacher_origin": "simulated" if simulated else "remote",
                "served_model": teacher,
                "text_hash": ids.sha256_hex(
                    ids.normalize_text(messages[-2]["content"] if i % 3 else messages[0]["content"])
                ),
                "run_id": "run-123",
            }
        )
    frame = pl.DataFrame(rows)
    return frame.with_columns(assign_split(frame["text_hash"], 0.25)).select(EXAMPLE_COLUMNS)


FIELDS = {
    "counts": {"raw_prompts": 40, "prompt_pool": 30},
    "drops": {"exact_duplicate": 10},
    "checks": {"refusal_rate": "passed"},
    "dagster_run_id": "run-123",
    "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024},
}


def race(storage_url: str, frames: list[pl.DataFrame]) -> list[PublishResult]:
    barrier = threading.Barrier(len(frames))

    def one(frame):
        barrier.wait()
        return publish_training_set(storage_url, "race", frame, manifest_fields=FIELDS)

    with concurrent.futures.ThreadPoolExecutor(len(frames)) as pool:
        return list(pool.map(one, frames))


def check_race(storage_url: str, frames: list[pl.DataFrame], results: list[PublishResult]) -> None:
    """Distinct versions for published results, every version intact, every content accounted for."""
    published = [r for r in results if r.published]
    assert len({r.version for r in published}) == len(published)
    versions = list_versions(storage_url, "race")
    # Numbers may skip one a publisher released (it found its content already published).
    assert [v.version for v in versions] == sorted({v.version for v in versions})
    for info in versions:
        assert verify_version(storage_url, "race", info.version) == [], "a file was overwritten or lost"
    expected_hashes = {content_hash(f, ["openai"]) for f in frames}
    assert {v.content_hash for v in versions} == expected_hashes
    if results:
        assert {r.content_hash for r in results} == expected_hashes
