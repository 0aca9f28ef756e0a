"""Stable identifiers and content hashes.

Every id in distillset is a hash of content, never a counter, so the same input gives the same id
on every machine and every rerun, and lineage survives a rebuild of the catalog.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_SPACE = re.compile(r"\s+")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def short_id(*parts: Any, length: int = 16) -> str:
    """A short hex id derived from ``parts`` (joined canonically)."""
    return sha256_hex(canonical_json(list(parts)))[:length]


def normalize_text(text: str) -> str:
    """The form used for exact deduplication: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def request_hash(model: str, messages: list[dict], sampling: dict) -> str:
    """The ledger key: a hash of everything that determines a teacher answer.

    The model, the full message list (system prompt included) and the sampling parameters.
    Changing any one of them makes a new key, so only that request is paid again.
    """
    return sha256_hex(canonical_json({"model": model, "messages": messages, "sampling": sampling}))


def prompt_id(source_sha256: str, source_line: int) -> str:
    """A prompt row's id: its source file's content hash and its line (or row) number."""
    return short_id("prompt", source_sha256, source_line)


def example_id(teacher_model: str, prompt_id_: str, request_hash_: str, *, simulated: bool = False) -> str:
    """A training example's id: which prompt, which teacher, which paid call.

    A simulated answer to the same request is another example than a real one (the ledger keeps
    both apart, see ``distillset.teacher.ledger``): its id says so.
    """
    if simulated:
        return short_id("example", teacher_model, prompt_id_, request_hash_, "simulated")
    return short_id("example", teacher_model, prompt_id_, request_hash_)
