"""A reasoning teacher's trace, kept apart from its answer.

OpenAI-compatible servers for reasoning models send the trace in a field of the message
(``reasoning_content``: vLLM, SGLang, DeepSeek; ``reasoning``: newer vLLM, OpenRouter) or inline as
a leading ``<think>...</think>`` block of the content. Verifiers and quality rules must read the
answer only, so the trace is split off when the answer arrives and stored in its own ledger
column; the export puts it back only when asked (``DISTILLSET_EXPORT_REASONING``).
"""

from __future__ import annotations

import re

REASONING_FIELDS = ("reasoning_content", "reasoning")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_LEADING_THINK = re.compile(r"^\s*<think>(.*?)(</think>|$)", re.DOTALL)


def split_reasoning(content: str | None, message: object = None) -> tuple[str, str | None]:
    """``(answer, reasoning)`` of one assistant message.

    Args:
        content: the message content as sent.
        message: the SDK's message object (or a dict); its ``reasoning_content`` / ``reasoning``
            field, when set, is the trace.

    Returns:
        The answer (whitespace trimmed; empty when a ``<think>`` block was never closed, i.e. the
        trace was cut) and the trace (None when there is none).
    """
    content = content or ""
    field = _field_reasoning(message)
    match = _LEADING_THINK.match(content)
    if match is None:
        return content.strip(), field
    inline = match.group(1).strip()
    answer = content[match.end() :].strip() if match.group(2) else ""
    reasoning = "\n\n".join(part for part in (field, inline) if part) or None
    return answer, reasoning


def with_reasoning(answer: str, reasoning: str | None) -> str:
    """The assistant message an export with reasoning publishes: ``<think>trace</think>`` then the answer."""
    if not reasoning:
        return answer
    return f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{answer}"


def _field_reasoning(message: object) -> str | None:
    if message is None:
        return None
    for name in REASONING_FIELDS:
        value = message.get(name) if isinstance(message, dict) else _attribute(message, name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _attribute(message: object, name: str):
    # The SDK's message is a pydantic model: its fields are in __dict__, the fields it does not
    # declare (reasoning_content, for now) in __pydantic_extra__. Reading them there avoids the
    # AttributeError getattr raises for each absent one (~50k instructions a request, bench/README.md).
    fields = getattr(message, "__dict__", None)
    extra = getattr(message, "__pydantic_extra__", None)
    if isinstance(fields, dict) and isinstance(extra, dict):
        return fields[name] if name in fields else extra.get(name)
    return getattr(message, name, None)
