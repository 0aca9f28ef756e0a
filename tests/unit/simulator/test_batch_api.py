"""The simulator's Batch API speaks what the openai SDK's ``files`` and ``batches`` clients expect.

Protects: an uploaded JSONL becomes a batch that completes after its delay; its output file has one
OpenAI-shaped line per request (``custom_id``, ``response.status_code``, ``response.body`` a chat
completion); listing is newest first and pages with ``after``; metadata is kept; cancel stops a
batch; batch answers are not counted as online completions.
"""

from __future__ import annotations

import io
import json

from openai import OpenAI

from distillset.simulator.batch import BatchFaults
from distillset.simulator.server import DEFAULT_MODELS, TeacherSimulator


def _line(i: int) -> bytes:
    body = {"model": DEFAULT_MODELS[0], "messages": [{"role": "user", "content": f"Question {i}?"}], "max_tokens": 64}
    return (
        json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
    ).encode()


def _submit(client: OpenAI, lines: bytes, tag: str):
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"tag": tag}
    )


def test_a_batch_completes_after_its_delay_with_openai_shaped_output():
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="x")
        batch = _submit(client, _line(1) + _line(2), "one")
        assert client.batches.retrieve(batch.id).status == "in_progress"
        sim.batches.faults.delay_s = 0
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts.completed == 2
        assert done.metadata == {"tag": "one"}
        lines = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
        assert [x["custom_id"] for x in lines] == ["c1", "c2"]
        assert all(x["response"]["status_code"] == 200 for x in lines)
        assert lines[0]["response"]["body"]["choices"][0]["message"]["content"]
        assert sim.stats()["completions"] == 0 and sim.batches.stats()["lines_answered"] == 2


def test_listing_is_newest_first_and_pages():
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="x")
        ids = [_submit(client, _line(i), str(i)).id for i in range(3)]
        first = client.batches.list(limit=2)
        assert len(first.data) == 2 and first.has_more
        assert [b.id for b in client.batches.list(limit=2)] == list(reversed(ids))  # the SDK follows `after`
        assert client.batches.cancel(ids[0]).status == "cancelled"


def test_failing_lines_go_to_the_error_file():
    with TeacherSimulator(batch_faults=BatchFaults(line_failure_rate=1.0)) as sim:
        client = OpenAI(base_url=sim.base_url, api_key="x")
        batch = client.batches.retrieve(_submit(client, _line(1), "f").id)
        assert batch.status == "completed" and batch.output_file_id is None
        [line] = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
        assert line["custom_id"] == "c1" and line["response"]["status_code"] == 500
