"""Export formats: OpenAI messages, ShareGPT and Alpaca from the same conversation.

Protects: a multi-turn conversation stays multi-turn in all three formats (no turn lost or
merged), the system prompt is kept, and malformed conversations are refused with a reason.
"""

from __future__ import annotations

import json

import pytest

from distillset.publish.exports import check_formats, export, to_alpaca, to_openai, to_sharegpt

CONVERSATION = [
    {"role": "system", "content": "You are a math tutor."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And times 3?"},
    {"role": "assistant", "content": "12."},
    {"role": "user", "content": "Explain in Chinese: 为什么?"},
    {"role": "assistant", "content": "因为 4 × 3 = 12。"},
]


def test_openai_keeps_every_turn():
    assert to_openai(CONVERSATION) == {"messages": CONVERSATION}


def test_sharegpt_keeps_every_turn_with_sharegpt_roles():
    conversations = to_sharegpt(CONVERSATION)["conversations"]
    assert [c["from"] for c in conversations] == ["system", "human", "gpt", "human", "gpt", "human", "gpt"]
    assert [c["value"] for c in conversations] == [m["content"] for m in CONVERSATION]


def test_alpaca_keeps_earlier_turns_as_history():
    record = to_alpaca(CONVERSATION)
    assert record["system"] == "You are a math tutor."
    assert record["history"] == [["What is 2 + 2?", "4."], ["And times 3?", "12."]]
    assert (record["instruction"], record["output"]) == ("Explain in Chinese: 为什么?", "因为 4 × 3 = 12。")
    single = to_alpaca(CONVERSATION[1:3])
    assert single == {"instruction": "What is 2 + 2?", "input": "", "output": "4.", "system": "", "history": []}


def test_export_writes_one_utf8_line_per_example():
    rows = [json.dumps(CONVERSATION), json.dumps(CONVERSATION[1:3])]
    for format_name, turns_key in (("openai", "messages"), ("sharegpt", "conversations")):
        lines = export(rows, format_name).decode("utf-8").splitlines()
        assert [len(json.loads(line)[turns_key]) for line in lines] == [7, 2]
    assert "为什么" in export(rows, "alpaca").decode("utf-8"), "non-ASCII is written as is"


@pytest.mark.parametrize(
    "messages,message",
    [
        ([], "non-empty"),
        ([{"role": "user", "content": "hi"}], "end with an assistant"),
        ([{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}], "unsupported message"),
        ([{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "y"}], "must be text"),
    ],
)
def test_malformed_conversations_are_refused(messages, message):
    with pytest.raises(ValueError, match=message):
        to_sharegpt(messages)


def test_check_formats_always_includes_openai_and_refuses_unknown():
    assert check_formats(["alpaca", "alpaca"]) == ["alpaca", "openai"]
    with pytest.raises(ValueError, match="parquet"):
        check_formats(["parquet"])
