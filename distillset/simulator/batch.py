"""The simulator's OpenAI Batch API: files, batches, output and error files.

Enough of ``/v1/files`` and ``/v1/batches`` for the openai SDK's ``files`` and ``batches`` clients:
upload a JSONL of request lines (``purpose="batch"``), create a batch with metadata, retrieve and
list batches (newest first, cursor pagination with ``after``), cancel, and read the output and
error files. A batch completes ``delay_s`` seconds after it was created; it is worked out lazily,
when a client next looks at it, so nothing runs in the background and a test controls time by
changing ``delay_s``. Faults: a share of lines fails (deterministically per request and attempt),
and a batch can expire with only its first lines answered, as a provider's does when its window
ends.

Batch answers are counted apart from online completions (``stats()["completions"]`` stays the
online count), so a test can tell "answered through batches" from "answered online".
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from distillset import ids
from distillset.simulator.faults import unit

if TYPE_CHECKING:
    from distillset.simulator.server import TeacherSimulator

CHAT_ENDPOINT = "/v1/chat/completions"
FINISHED = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchFaults:
    """What goes wrong in the simulator's batches.

    Attributes:
        delay_s: seconds from ``batches.create`` to completion (a provider's hours, in small).
        line_failure_rate: share of lines answered with a 500 in the error file.
        failing_attempts: only a line's first this-many attempts may fail (1: a resubmission succeeds).
        expire_after_lines: a batch expires at its deadline with only its first this-many lines done.
        fail_validation: every new batch fails validation (bad input file), nothing answered.
    """

    delay_s: float = 0.0
    line_failure_rate: float = 0.0
    failing_attempts: int = 1
    expire_after_lines: int | None = None
    fail_validation: bool = False


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict | None
    created_at: float
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    finished_at: float | None = None
    error: str | None = None


class SimulatorBatches:
    """The Batch API of one ``TeacherSimulator`` (its routes, files, batches and counters)."""

    def __init__(self, simulator: TeacherSimulator, faults: BatchFaults | None = None) -> None:
        self.simulator = simulator
        self.faults = faults or BatchFaults()
        self._lock = threading.Lock()
        self._files: dict[str, tuple[str, str, bytes]] = {}  # id -> (purpose, filename, bytes)
        self._batches: dict[str, _Batch] = {}
        self._attempts: Counter[str] = Counter()
        self.lines_answered = 0
        self.lines_failed = 0
        self.answered_by_hash: Counter[str] = Counter()
        """Request hash -> how many times a batch answered it (the batch bill)."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/files", self._upload)
        router.add_get("/v1/files/{file_id}", self._file)
        router.add_get("/v1/files/{file_id}/content", self._file_content)
        router.add_post("/v1/batches", self._create)
        router.add_get("/v1/batches", self._list)
        router.add_get("/v1/batches/{batch_id}", self._retrieve)
        router.add_post("/v1/batches/{batch_id}/cancel", self._cancel)

    # ----- inspection for tests -----
    def created(self) -> list[dict]:
        """Every batch created so far, oldest first, as the API shows it."""
        with self._lock:
            return [self._view(b) for b in sorted(self._batches.values(), key=lambda b: b.created_at)]

    def stats(self) -> dict:
        with self._lock:
            return {
                "batches": len(self._batches),
                "files": len(self._files),
                "lines_answered": self.lines_answered,
                "lines_failed": self.lines_failed,
                "answered_by_hash": dict(self.answered_by_hash),
            }

    # ----- files -----
    async def _upload(self, request: web.Request) -> web.Response:
        if not self.simulator._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        form = await request.post()
        upload = form.get("file")
        purpose = form.get("purpose")
        if upload is None or not hasattr(upload, "file"):
            return _error(400, "a file is required", None)
        data = upload.file.read()
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        with self._lock:
            self._files[file_id] = (str(purpose), upload.filename or "upload.jsonl", data)
        return web.json_response(self._file_view(file_id))

    def _file_view(self, file_id: str) -> dict:
        purpose, filename, data = self._files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    async def _file(self, request: web.Request) -> web.Response:
        with self._lock:
            if request.match_info["file_id"] not in self._files:
                return _error(404, "No such file", "not_found")
            return web.json_response(self._file_view(request.match_info["file_id"]))

    async def _file_content(self, request: web.Request) -> web.Response:
        if not self.simulator._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        with self._lock:
            found = self._files.get(request.match_info["file_id"])
        if found is None:
            return _error(404, "No such file", "not_found")
        return web.Response(body=found[2], content_type="application/octet-stream")

    # ----- batches -----
    async def _create(self, request: web.Request) -> web.Response:
        if not self.simulator._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        body = await request.json()
        file_id = body.get("input_file_id")
        with self._lock:
            if file_id not in self._files:
                return _error(400, f"input file {file_id!r} does not exist", None)
        if body.get("endpoint") != CHAT_ENDPOINT:
            return _error(400, f"endpoint must be {CHAT_ENDPOINT}", None)
        batch = _Batch(
            id=f"batch_{uuid.uuid4().hex[:24]}",
            input_file_id=file_id,
            endpoint=body["endpoint"],
            completion_window=body.get("completion_window", "24h"),
            metadata=body.get("metadata"),
            created_at=time.time(),
        )
        with self._lock:
            self._batches[batch.id] = batch
            view = self._view(batch)
        return web.json_response(view)

    async def _retrieve(self, request: web.Request) -> web.Response:
        with self._lock:
            batch = self._batches.get(request.match_info["batch_id"])
            if batch is None:
                return _error(404, "No such batch", "not_found")
            self._advance(batch)
            return web.json_response(self._view(batch))

    async def _cancel(self, request: web.Request) -> web.Response:
        with self._lock:
            batch = self._batches.get(request.match_info["batch_id"])
            if batch is None:
                return _error(404, "No such batch", "not_found")
            if batch.status not in FINISHED:
                batch.status, batch.finished_at = "cancelled", time.time()
            return web.json_response(self._view(batch))

    async def _list(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        with self._lock:
            newest_first = sorted(self._batches.values(), key=lambda b: b.created_at, reverse=True)
            if after is not None:
                positions = [i for i, b in enumerate(newest_first) if b.id == after]
                newest_first = newest_first[positions[0] + 1 :] if positions else []
            page = newest_first[:limit]
            for batch in page:
                self._advance(batch)
            data = [self._view(b) for b in page]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(newest_first) > limit,
            }
        )

    def _view(self, batch: _Batch) -> dict:
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": [{"code": "invalid_file", "message": batch.error, "line": None}]}
            if batch.error
            else None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at),
            "completed_at": int(batch.finished_at) if batch.finished_at and batch.status == "completed" else None,
            "expired_at": int(batch.finished_at) if batch.finished_at and batch.status == "expired" else None,
            "request_counts": dict(batch.counts),
            "metadata": batch.metadata,
        }

    def _advance(self, batch: _Batch) -> None:
        """Bring ``batch`` to where it is now (under the lock): validated, in progress, finished."""
        if batch.status in FINISHED:
            return
        lines = self._files[batch.input_file_id][2].splitlines()
        batch.counts["total"] = len([line for line in lines if line.strip()])
        if self.faults.fail_validation:
            batch.status, batch.finished_at = "failed", time.time()
            batch.error = "the input file could not be validated (simulated)"
            return
        batch.status = "in_progress"
        if time.time() - batch.created_at < self.faults.delay_s:
            return
        self._work_out(batch, [line for line in lines if line.strip()])

    def _work_out(self, batch: _Batch, lines: list[bytes]) -> None:
        # The same spelling of the sampling parameters as online requests (so the same request hash);
        # imported here because server.py imports this module.
        from distillset.simulator.server import _sampling_of as sampling_of

        outputs, errors = [], []
        keep = self.faults.expire_after_lines
        for position, raw in enumerate(lines):
            line = json.loads(raw)
            custom_id = line.get("custom_id")
            if keep is not None and position >= keep:
                errors.append(
                    _error_line(
                        custom_id,
                        "batch_expired",
                        "This request could not be executed before the completion window expired.",
                    )
                )
                continue
            body = line.get("body") or {}
            problem = self.simulator._validate(body)
            if problem is not None:
                status, message, _ = problem
                errors.append(
                    _response_line(custom_id, status, {"error": {"message": message, "type": "invalid_request_error"}})
                )
                continue
            model, messages = body["model"], body["messages"]
            sampling = sampling_of(body)
            key = ids.request_hash(model, messages, sampling)
            self._attempts[key] += 1
            attempt = self._attempts[key]
            if (
                self.faults.line_failure_rate
                and attempt <= self.faults.failing_attempts
                and unit(f"batch-fail:{key}:{attempt}") < self.faults.line_failure_rate
            ):
                errors.append(
                    _response_line(
                        custom_id, 500, {"error": {"message": "The server had an error.", "type": "server_error"}}
                    )
                )
                continue
            payload = self.simulator.completion(model, messages, sampling, key, attempt)
            outputs.append(_response_line(custom_id, 200, payload))
            self.answered_by_hash[key] += 1
        batch.counts["completed"] = len(outputs)
        batch.counts["failed"] = len(errors)
        self.lines_answered += len(outputs)
        self.lines_failed += len(errors)
        if outputs:
            batch.output_file_id = self._store(batch, "output", outputs)
        if errors:
            batch.error_file_id = self._store(batch, "error", errors)
        batch.status = "expired" if keep is not None and keep < len(lines) else "completed"
        batch.finished_at = time.time()

    def _store(self, batch: _Batch, kind: str, lines: list[dict]) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        self._files[file_id] = ("batch_output", f"{batch.id}_{kind}.jsonl", data)
        return file_id


def _response_line(custom_id: str | None, status: int, body: dict) -> dict:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:20]}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": body},
        "error": None,
    }


def _error_line(custom_id: str | None, code: str, message: str) -> dict:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:20]}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def _error(status: int, message: str, code: str | None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}, status=status
    )
