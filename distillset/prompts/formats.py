"""The row shapes of public prompt datasets, normalized into one conversation form.

A prompt row becomes an optional system prompt plus the user turns, in order. Assistant turns
that a source carries are dropped on purpose: the teacher answers every user turn again.
Shapes are detected per row, so one file may mix them.

| source_format | row shape |
|---|---|
| ``openai_messages`` | ``{"messages": [{"role", "content"}...]}`` |
| ``sharegpt`` | ``{"conversations": [{"from", "value"}...]}`` |
| ``mt_bench`` | ``{"turns": [...], "category"?, "reference"?: [...]}`` |
| ``gsm8k`` | ``{"question", "answer"?}``; reference = the text after the last ``####`` |
| ``alpaca`` | ``{"instruction", "input"?}`` or the self-instruct seed ``{"instruction", "instances", "name"}`` |
| ``plain`` | ``{"prompt", "system"?, "reference"?}`` |

Any shape may also carry a string ``category``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TURN_SEPARATOR = "\n\n"

_SYSTEM_ROLES = {"system", "developer"}
_USER_ROLES = {"user"}
# Roles whose content the teacher regenerates or that carry no user text.
_DROPPED_ROLES = {"assistant", "tool", "function", "ipython"}

_SHAREGPT_SYSTEM = {"system"}
_SHAREGPT_USER = {"human", "user"}
_SHAREGPT_DROPPED = {"gpt", "assistant", "chatgpt", "bing", "bard", "model", "tool", "function_call", "observation"}

# The key that identifies each shape, in detection order: a row that has several (an MT-Bench
# row with a ``question`` column, say) takes the most specific one.
_SHAPE_KEYS = (
    ("messages", "openai_messages"),
    ("conversations", "sharegpt"),
    ("turns", "mt_bench"),
    ("question", "gsm8k"),
    ("instruction", "alpaca"),
    ("prompt", "plain"),
)


@dataclass(frozen=True)
class NormalizedPrompt:
    """One prompt row in the form every later stage reads.

    Attributes:
        system: the system prompt the source gives, or None.
        turns: the user turns, in order (at least one, none empty).
        reference: a reference answer, or None.
        category: the source's category label, or None.
        source_format: which shape the row had (see the module docstring).
    """

    system: str | None
    turns: list[str]
    reference: str | None
    category: str | None
    source_format: str


class PromptShapeError(ValueError):
    """A row that cannot become a prompt.

    Attributes:
        reason: a stable ``rejects.reason`` code (``unknown_shape``, ``missing_field``,
            ``empty_text``, ``invalid_text``, ``not_an_object``).
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def prompt_text(system: str | None, turns: list[str]) -> str:
    """The text dedup and decontamination look at: system prompt and user turns joined by a blank line.

    Args:
        system: the system prompt, or None.
        turns: the user turns, in order.

    Returns:
        ``system`` (when given) and ``turns`` joined by ``"\\n\\n"``.
    """
    return TURN_SEPARATOR.join(([system] if system else []) + list(turns))


def normalize_row(row: dict) -> NormalizedPrompt:
    """Turn one source row into a :class:`NormalizedPrompt`.

    Keys whose value is None count as absent, so dense Parquet and CSV rows (every column present,
    unused ones null) are detected like sparse JSON rows.

    Args:
        row: one parsed JSON object, Parquet row or CSV row.

    Returns:
        The normalized prompt.

    Raises:
        PromptShapeError: the row is not an object, has no known shape, misses a field or has a field
            of the wrong type, has empty text, or text that cannot be stored (NUL, lone surrogates).
    """
    if not isinstance(row, dict):
        raise PromptShapeError("not_an_object", f"the row is a JSON {_json_type(row)}, not an object")
    present = {key: value for key, value in row.items() if value is not None}
    for key, source_format in _SHAPE_KEYS:
        if key in present:
            prompt = _NORMALIZERS[source_format](present)
            _check_storable(prompt)
            return prompt
    null_keys = [key for key, _ in _SHAPE_KEYS if key in row]
    if null_keys:
        raise PromptShapeError("missing_field", f"field {null_keys[0]!r} is null")
    keys = ", ".join(repr(k) for k in list(row)[:10]) or "none"
    expected = ", ".join(repr(k) for k, _ in _SHAPE_KEYS)
    raise PromptShapeError("unknown_shape", f"no known prompt shape: keys {keys}; expected one of {expected}")


def _normalize_plain(row: dict) -> NormalizedPrompt:
    return NormalizedPrompt(
        system=_optional_text(row, "system"),
        turns=[_required_text(row, "prompt")],
        reference=_optional_text(row, "reference"),
        category=_optional_text(row, "category"),
        source_format="plain",
    )


def _normalize_alpaca(row: dict) -> NormalizedPrompt:
    instruction = _required_text(row, "instruction")
    if "instances" in row:
        # Self-instruct seed tasks keep the input inside ``instances``; the first one is the prompt's.
        instances = row["instances"]
        if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
            raise PromptShapeError("missing_field", "'instances' must be a non-empty list of objects")
        user_input = _optional_text(instances[0], "input", where="instances[0].input")
    else:
        user_input = _optional_text(row, "input")
    turn = instruction + TURN_SEPARATOR + user_input if user_input else instruction
    return NormalizedPrompt(
        system=_optional_text(row, "system"),
        turns=[turn],
        reference=None,
        category=_optional_text(row, "category") or _optional_text(row, "name"),
        source_format="alpaca",
    )


def _normalize_gsm8k(row: dict) -> NormalizedPrompt:
    question = _required_text(row, "question")
    answer = _optional_text(row, "answer")
    reference = None
    if answer is not None:
        # GSM8K puts the final answer after "####"; other question/answer sets give the answer whole.
        reference = answer.rsplit("####", 1)[-1].strip() or None
    return NormalizedPrompt(
        system=_optional_text(row, "system"),
        turns=[question],
        reference=reference,
        category=_optional_text(row, "category"),
        source_format="gsm8k",
    )


def _normalize_mt_bench(row: dict) -> NormalizedPrompt:
    turns = row["turns"]
    if not isinstance(turns, list) or not turns:
        raise PromptShapeError("missing_field", "'turns' must be a non-empty list of strings")
    turns = [_text_value(turn, f"turns[{i}]") for i, turn in enumerate(turns)]
    reference = row.get("reference")
    if isinstance(reference, list):
        reference = TURN_SEPARATOR.join(
            _text_value(r, f"reference[{i}]", allow_empty=True) for i, r in enumerate(reference)
        )
    elif reference is not None:
        reference = _text_value(reference, "reference", allow_empty=True)
    return NormalizedPrompt(
        system=_optional_text(row, "system"),
        turns=turns,
        reference=reference or None,
        category=_optional_text(row, "category"),
        source_format="mt_bench",
    )


def _normalize_openai_messages(row: dict) -> NormalizedPrompt:
    return _normalize_conversation(
        row,
        list_key="messages",
        role_key="role",
        text_key="content",
        system_roles=_SYSTEM_ROLES,
        user_roles=_USER_ROLES,
        dropped_roles=_DROPPED_ROLES,
        source_format="openai_messages",
    )


def _normalize_sharegpt(row: dict) -> NormalizedPrompt:
    return _normalize_conversation(
        row,
        list_key="conversations",
        role_key="from",
        text_key="value",
        system_roles=_SHAREGPT_SYSTEM,
        user_roles=_SHAREGPT_USER,
        dropped_roles=_SHAREGPT_DROPPED,
        source_format="sharegpt",
    )


def _normalize_conversation(
    row: dict,
    *,
    list_key: str,
    role_key: str,
    text_key: str,
    system_roles: set[str],
    user_roles: set[str],
    dropped_roles: set[str],
    source_format: str,
) -> NormalizedPrompt:
    messages = row[list_key]
    if not isinstance(messages, list) or not messages:
        raise PromptShapeError("missing_field", f"{list_key!r} must be a non-empty list of objects")
    systems: list[str] = []
    turns: list[str] = []
    for i, message in enumerate(messages):
        where = f"{list_key}[{i}]"
        if not isinstance(message, dict):
            raise PromptShapeError("missing_field", f"{where} is a {_json_type(message)}, not an object")
        role = message.get(role_key)
        if not isinstance(role, str):
            raise PromptShapeError("missing_field", f"{where}.{role_key} is missing or not a string")
        if role in dropped_roles:
            continue
        if role not in system_roles and role not in user_roles:
            raise PromptShapeError("unknown_shape", f"{where}.{role_key} is {role!r}, not a known role")
        text = _message_text(message.get(text_key), f"{where}.{text_key}")
        if role in system_roles:
            if text.strip():
                systems.append(text)
        else:
            turns.append(text)
    if not turns:
        raise PromptShapeError("missing_field", f"{list_key!r} has no user message")
    return NormalizedPrompt(
        system=TURN_SEPARATOR.join(systems) or _optional_text(row, "system"),
        turns=turns,
        reference=None,
        category=_optional_text(row, "category"),
        source_format=source_format,
    )


def _message_text(content: Any, where: str) -> str:
    # OpenAI content may be a list of parts; only text parts can be sent to a text teacher.
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise PromptShapeError("missing_field", f"{where}[{j}] is not a text part")
            texts.append(_text_value(part.get("text"), f"{where}[{j}].text", allow_empty=True))
        content = "\n".join(texts)
    return _text_value(content, where)


def _required_text(row: dict, key: str) -> str:
    return _text_value(row.get(key), key)


def _optional_text(row: dict, key: str, *, where: str | None = None) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    value = _text_value(value, where or key, allow_empty=True)
    return value if value.strip() else None


def _text_value(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if value is None:
        raise PromptShapeError("missing_field", f"field {where!r} is missing")
    if not isinstance(value, str):
        raise PromptShapeError("missing_field", f"field {where!r} is a {_json_type(value)}, not a string")
    if not allow_empty and not value.strip():
        raise PromptShapeError("empty_text", f"field {where!r} is empty or whitespace only")
    return value


def _check_storable(prompt: NormalizedPrompt) -> None:
    texts = [prompt.system, *prompt.turns, prompt.reference, prompt.category]
    for text in texts:
        if text is None:
            continue
        if "\x00" in text:
            raise PromptShapeError("invalid_text", "the text contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            # json allows escaped lone surrogates ("\ud800"); no UTF-8 store can hold them.
            raise PromptShapeError("invalid_text", f"the text is not valid Unicode ({exc.reason})") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_NORMALIZERS = {
    "plain": _normalize_plain,
    "alpaca": _normalize_alpaca,
    "gsm8k": _normalize_gsm8k,
    "mt_bench": _normalize_mt_bench,
    "openai_messages": _normalize_openai_messages,
    "sharegpt": _normalize_sharegpt,
}
