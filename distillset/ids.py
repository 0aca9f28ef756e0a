"""Stable identifiers and content hashes.

Every id in distillset is a hash of content, never a counter, so the same input gives the same id
on every machine and every rerun, and lineage survives a rebuild of the catalog.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from json.encoder import encode_basestring
from typing import Any

_SPACE = re.compile(r"\s+")


# The encoder ``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``
# builds on every call, built once: the same output byte for byte (json.dumps makes exactly this
# JSONEncoder and calls its encode), without the per-call construction (a quarter of the cost for a
# teacher request's messages; bench/README.md, "Third pass"). The encoder keeps no state between
# calls, so one is safe to share across threads.
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode
_quote = encode_basestring  # what that encoder quotes every string with (ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values give equal strings."""
    return _ENCODE(value)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def short_id(*parts: Any, length: int = 16) -> str:
    """A short hex id derived from ``parts`` (joined canonically)."""
    if all(type(part) is str or type(part) is int for part in parts):
        # canonical_json of a list of strings and ints spelled out: each string quoted by the
        # encoder's own function, each int as its repr. The same bytes without the encoder's
        # machinery, once per row for prompt and example ids.
        text = ",".join(_quote(part) if type(part) is str else repr(part) for part in parts)
        return sha256_hex(f"[{text}]")[:length]
    return sha256_hex(canonical_json(list(parts)))[:length]


def normalize_text(text: str) -> str:
    """The form used for exact deduplication: NFKC, case-folded, whitespace collapsed."""
    # str.split() splits on exactly the characters ``\s`` matches in a str pattern (both are
    # Py_UNICODE_ISSPACE) and drops the ends, so this is ``_SPACE.sub(" ", t).strip()``, faster.
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def request_hash(model: str, messages: list[dict], sampling: dict) -> str:
    """The ledger key: a hash of everything that determines a teacher answer.

    The model, the full message list (system prompt included) and the sampling parameters.
    Changing any one of them makes a new key, so only that request is paid again.
    """
    return sha256_hex(canonical_json({"model": model, "messages": messages, "sampling": sampling}))


def request_hash_of_json(model_json: str, messages_json: str, sampling_json: str) -> str:
    """``request_hash`` from the canonical JSON of its three parts, byte for byte the same key.

    The request's canonical JSON is an object whose sorted keys are ``messages``, ``model`` and
    ``sampling``, so it is those parts' canonical JSON spliced in that order: a caller that needs
    the messages' JSON anyway (the ledger stores it) encodes them once, not twice, and the model's
    and sampling's JSON once per run. ``model_json`` is ``canonical_json(model)``.
    """
    return sha256_hex(f'{{"messages":{messages_json},"model":{model_json},"sampling":{sampling_json}}}')


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
