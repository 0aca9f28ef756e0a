"""Canonical JSON and request hashes stay byte-identical to their original definition.

Request hashes are ledger keys shared with ledgers written by earlier versions: the shared
encoder and the spliced ``request_hash_of_json`` must give exactly what the plain ``json.dumps``
definition gave, on every kind of value a request can hold.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from distillset import ids


def _reference_json(value) -> str:
    # The definition ids.canonical_json had before the shared encoder: keep it spelled out here.
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _reference_hash(model, messages, sampling) -> str:
    text = _reference_json({"model": model, "messages": messages, "sampling": sampling})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


MESSAGES = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "数学题：小明有 3 个苹果 🍎，吃了 1 个。还剩几个？"}],
    [{"role": "user", "content": 'quotes " and \\ backslash, tab\t, newline\n, nul \x00, \u2028 \ud7ff'}],
    [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ответ — «да»"},
        {"role": "user", "content": "SELECT * FROM t WHERE x = 'é';"},
    ],
    [{"role": "user", "content": [{"type": "text", "text": "nested"}, {"type": "image", "b": None}]}],
    [],
]

SAMPLINGS = [
    {},
    {"temperature": 0.7, "top_p": 1.0, "max_tokens": 512},
    {"temperature": 0.1 + 0.2, "seed": 3, "stop": ["\n\n", "</s>"], "logit_bias": {"50256": -100}},
    {"max_tokens": None, "z": 1e-300, "a": 1e300, "m": -0.0, "n": 12345678901234567890},
    {"extra_body": {"chat_template_kwargs": {"enable_thinking": False}, "b": [1, 2.5, None, True]}},
    {"temperature": float("inf"), "top_p": float("nan")},
]

MODELS = ["gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct", "模型-ü", ""]


@pytest.mark.parametrize(
    "value", [*MESSAGES, *SAMPLINGS, *MODELS, None, 1.5, [None, {"b": 1, "a": [2, {"d": 3, "c": 4}]}]]
)
def test_canonical_json_is_the_plain_json_dumps_definition(value):
    assert ids.canonical_json(value) == _reference_json(value)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("messages", MESSAGES)
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_request_hash_and_its_spliced_form_match_the_original_key(model, messages, sampling):
    expected = _reference_hash(model, messages, sampling)
    assert ids.request_hash(model, messages, sampling) == expected
    spliced = ids.request_hash_of_json(
        ids.canonical_json(model), ids.canonical_json(messages), ids.canonical_json(sampling)
    )
    assert spliced == expected


def test_a_changed_part_changes_the_spliced_key():
    # Guards against a splice that ignores a part (a test that could never fail would not).
    messages, sampling = MESSAGES[0], SAMPLINGS[1]
    base = ids.request_hash_of_json('"m"', ids.canonical_json(messages), ids.canonical_json(sampling))
    assert base != ids.request_hash_of_json('"n"', ids.canonical_json(messages), ids.canonical_json(sampling))
    assert base != ids.request_hash_of_json('"m"', ids.canonical_json(MESSAGES[1]), ids.canonical_json(sampling))
    assert base != ids.request_hash_of_json('"m"', ids.canonical_json(messages), ids.canonical_json(SAMPLINGS[2]))


def test_the_shared_encoder_still_rejects_circular_values():
    value: list = []
    value.append(value)
    with pytest.raises(ValueError):
        ids.canonical_json(value)


@pytest.mark.parametrize(
    ("sha", "line"),
    [("ab" * 32, 1), ("0" * 64, 123_456), ("f" * 64, 0), ("not hex ü", 7), ("ab" * 32, True)],
)
def test_prompt_id_is_the_short_id_of_its_parts(sha, line):
    # The spelled-out fast path and the generic one give the same ids (rows' ids are a contract).
    reference = hashlib.sha256(_reference_json(["prompt", sha, line]).encode("utf-8")).hexdigest()[:16]
    assert ids.prompt_id(sha, line) == reference


def test_normalize_text_collapses_every_unicode_space_like_the_regex():
    import re
    import sys
    import unicodedata

    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if re.match(r"\s", chr(c)))
    assert len(spaces) > 20  # the ASCII ones, NEL, NBSP, the U+2000 block, ideographic space...

    def reference(text: str) -> str:
        return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()

    texts = [spaces, f"{spaces}A{spaces}b", "\ufb01 Straße\u00a0\u3000X\x1c\x1dy\n", "", "plain"]
    texts += [f"a{c}b{c}{c}C " for c in spaces]
    for text in texts:
        assert ids.normalize_text(text) == reference(text)
    assert ids.normalize_text(f" a{spaces}B ") == "a b"


@pytest.mark.parametrize(
    "parts",
    [
        ("example", "meta-llama/Llama-3.1-8B", "abc", "f" * 64),
        ('quote " and \\ back', "tab\tnew\nline\x00\x1f", "\u2028\u2029 é 中文 😀 \ud800", -12, 0, 10**30),
        ("bool", True, False),  # not ints to the fast path: JSON true/false
        ("mixed", None, 1.5, ["list"], {"b": 1, "a": 2}),
        (),
    ],
)
def test_short_id_is_the_hash_of_the_canonical_json_of_its_parts(parts):
    expected = hashlib.sha256(_reference_json(list(parts)).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if "\ud800" in "".join(p for p in parts if isinstance(p, str)):
        with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot be hashed, on either path
            ids.short_id(*parts)
        return
    assert ids.short_id(*parts) == expected
