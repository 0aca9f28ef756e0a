"""Submitting a batch without ever submitting it twice: intent, upload, create, adopt.

The order is fixed: the ledger records the batch and its lines (``intent``), the input file is
uploaded (``uploaded``, with its file id), the batch is created with distillset's token in its
metadata (``submitted``, with the batch id). A crash can stop it anywhere; ``advance`` picks a
batch up where the ledger says it is, and before uploading or creating again it lists the
provider's batches for one whose metadata carries the token: a batch created just before the crash
(its id never recorded) is adopted, not created a second time. Uploading a file costs nothing, so
a file uploaded twice is harmless; creating a batch is what is paid.
"""

from __future__ import annotations

import io
import json
import logging
import uuid

from openai import APIConnectionError, APITimeoutError, NotFoundError, OpenAI

from distillset.teacher.batch.lines import CHAT_ENDPOINT, BatchLine
from distillset.teacher.batch.store import BatchRecord, BatchStore

log = logging.getLogger(__name__)

TOKEN_KEY = "distillset_token"
"""The batch metadata key that names the ledger's batch (how a crashed submit is adopted)."""
MODEL_KEY = "distillset_model"
# How far back (seconds) before the intent was recorded a provider batch can be ours: clocks differ.
_CLOCK_SLACK_S = 3600


class BatchUnsupportedError(RuntimeError):
    """The endpoint offers no Batch API: nothing was submitted."""


def new_token() -> str:
    return f"ds-{uuid.uuid4().hex}"


def submit(
    client: OpenAI,
    store: BatchStore,
    lines: list[BatchLine],
    *,
    model: str,
    origin: str,
    endpoint: str,
    window: str,
    run_id: str | None,
) -> BatchRecord | None:
    """Record, upload and create one batch of ``lines``; returns its record (None: nothing left to submit)."""
    token = new_token()
    if not store.record_intent(token, lines, model=model, origin=origin, endpoint=endpoint, run_id=run_id):
        return None  # another run submitted every one of them a moment ago
    # Recorded a moment ago by this process: the provider cannot have it yet, no need to look.
    return advance(client, store, store.get(token), window=window, fresh=True)


def advance(client: OpenAI, store: BatchStore, record: BatchRecord, *, window: str, fresh: bool = False) -> BatchRecord:
    """Bring an ``intent`` or ``uploaded`` batch to ``submitted`` (adopting the provider's if it has it)."""
    if record.state == "submitted" or record.state == "finished":
        return record
    adopted = None if fresh else find_by_token(client, record)
    if adopted is not None:
        log.info("batch %s: adopted provider batch %s (created before a crash)", record.token, adopted.id)
        store.set_submitted(record.token, adopted.id, adopted.status)
        return store.get(record.token)
    file_id = record.input_file_id
    if file_id is None:
        try:
            file_id = _upload(client, store, record)
        except NotFoundError:
            raise BatchUnsupportedError(
                f"the endpoint {record.endpoint} has no Batch API (POST /files answered 404); "
                "unset TEACHER_BATCH to send requests online"
            ) from None
        store.set_uploaded(record.token, file_id)
    try:
        # No SDK retry for the one paid call: a create whose answer was lost may have succeeded,
        # and only a look at the provider's batches can tell.
        batch = client.with_options(max_retries=0).batches.create(
            input_file_id=file_id,
            endpoint=CHAT_ENDPOINT,
            completion_window=window,
            metadata={TOKEN_KEY: record.token, MODEL_KEY: record.model[:512]},
        )
    except (APIConnectionError, APITimeoutError):
        # The create may have reached the provider: never create again blindly, look first.
        adopted = find_by_token(client, record)
        if adopted is None:
            raise
        batch = adopted
    store.set_submitted(record.token, batch.id, batch.status)
    return store.get(record.token)


def _upload(client: OpenAI, store: BatchStore, record: BatchRecord) -> str:
    data = b"".join(
        BatchLine(key, record.model, json.loads(messages), json.loads(sampling)).encode()
        for key, messages, sampling, _ in store.lines_of(record.token)
    )
    uploaded = client.files.create(file=(f"{record.token}.jsonl", io.BytesIO(data)), purpose="batch")
    return uploaded.id


def find_by_token(client: OpenAI, record: BatchRecord):
    """The provider's batch whose metadata carries ``record``'s token, or None.

    Batches are listed newest first; listing stops at batches created well before the intent was
    recorded, so a provider account with years of batches is not read to the end.
    """
    try:
        listing = client.batches.list(limit=100)
    except NotFoundError:
        raise BatchUnsupportedError(
            f"the endpoint {record.endpoint} has no Batch API (GET /batches answered 404); "
            "unset TEACHER_BATCH to send requests online"
        ) from None
    for batch in listing:
        if (batch.metadata or {}).get(TOKEN_KEY) == record.token:
            return batch
        if batch.created_at < record.created_at - _CLOCK_SLACK_S:
            return None
    return None
