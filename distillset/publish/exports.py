"""The fine-tuning formats a version can be exported in, all from the OpenAI ``messages`` list.

- ``openai``: ``{"messages": [...]}`` (OpenAI chat fine-tuning; also what TRL's SFTTrainer reads).
- ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``
  (FastChat / Axolotl / LLaMA-Factory).
- ``alpaca``: ``{"instruction", "input", "output", "system", "history"}``, the LLaMA-Factory
  variant of Alpaca: earlier turns go to ``history`` as ``[user, assistant]`` pairs, so a
  multi-turn conversation stays multi-turn instead of being cut to its last turn.

Every format is written per split (``train.jsonl`` / ``validation.jsonl`` for ``openai``,
``<format>_train.jsonl`` / ``<format>_validation.jsonl`` for the others), so every export has the
same train/validation split. ShareGPT and Alpaca records also carry the row's ``example_id``,
``simulated`` flag, ``teacher_origin`` and ``served_model`` (their readers ignore extra keys);
OpenAI records keep only ``messages``, which is all its fine-tuning format admits.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

_SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def _check(messages: list[dict]) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("a training example needs a non-empty messages list")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in _SHAREGPT_ROLES:
            raise ValueError(f"unsupported message in a training example: {str(message)[:80]!r}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"message content must be text, got {type(message.get('content')).__name__}")
    if messages[-1]["role"] != "assistant":
        raise ValueError("a training example must end with an assistant answer")
    return messages


def to_openai(messages: list[dict]) -> dict:
    """``{"messages": [...]}`` with only ``role`` and ``content`` kept."""
    return {"messages": [{"role": m["role"], "content": m["content"]} for m in _check(messages)]}


def to_sharegpt(messages: list[dict]) -> dict:
    """ShareGPT ``conversations`` with the usual ``from`` names."""
    return {"conversations": [{"from": _SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in _check(messages)]}


def to_alpaca(messages: list[dict]) -> dict:
    """Alpaca with ``history`` pairs for the turns before the last one."""
    messages = _check(messages)
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    dialogue = [m for m in messages if m["role"] != "system"]
    pairs: list[list[str]] = []
    pending_user: list[str] = []
    for message in dialogue:
        if message["role"] == "user":
            pending_user.append(message["content"])
        else:
            pairs.append(["\n\n".join(pending_user), message["content"]])
            pending_user = []
    *history, (instruction, output) = pairs
    return {"instruction": instruction, "input": "", "output": output, "system": system, "history": history}


FORMATS: dict[str, tuple[str, Callable[[list[dict]], dict]]] = {
    "openai": ("", to_openai),
    "sharegpt": ("sharegpt", to_sharegpt),
    "alpaca": ("alpaca", to_alpaca),
}
"""Format name -> (file name prefix, converter); see ``export_file``."""

SPLITS = ("train", "validation")
LINEAGE_FIELDS = ("example_id", "simulated", "teacher_origin", "served_model")
"""Row fields copied into the records of the formats that admit extra keys (not ``openai``)."""


def export_file(format_name: str, split: str) -> str:
    """The file name of one split of one format: ``train.jsonl``, ``sharegpt_validation.jsonl``..."""
    prefix, _ = FORMATS[format_name]
    return f"{prefix}_{split}.jsonl" if prefix else f"{split}.jsonl"


def check_formats(formats: Iterable[str]) -> list[str]:
    """The requested formats, deduplicated and sorted, ``openai`` always included.

    Raises:
        ValueError: on an unknown format name.
    """
    requested = set(formats) | {"openai"}
    unknown = sorted(requested - FORMATS.keys())
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; known: {sorted(FORMATS)}")
    return sorted(requested)


# ``json.dumps(record, ensure_ascii=False)`` builds this encoder anew for every record (its
# non-default argument defeats json's cached encoder); built once, the same bytes. It keeps no
# state between calls.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def jsonl_bytes(records: Iterable[dict]) -> bytes:
    """UTF-8 JSON Lines, non-ASCII kept as is (training text is multilingual)."""
    encode = _ENCODE
    return "".join([encode(r) + "\n" for r in records]).encode("utf-8")


def export(messages_json: Iterable[str], format_name: str, lineage: Iterable[dict] | None = None) -> bytes:
    """The JSONL bytes of ``messages_json`` rows (each a JSON messages list) in ``format_name``.

    ``lineage``, one dict per row, adds its ``LINEAGE_FIELDS`` to every record of a format other
    than ``openai``.
    """
    _, convert = FORMATS[format_name]
    records = (convert(json.loads(raw)) for raw in messages_json)
    if lineage is not None and format_name != "openai":
        records = (
            {**record, **{k: extra.get(k) for k in LINEAGE_FIELDS}}
            for record, extra in zip(records, lineage, strict=True)
        )
    return jsonl_bytes(records)
