"""Protects the row shapes distillset accepts and how each becomes a conversation.

Each public dataset shape (plain, Alpaca and self-instruct seeds, GSM8K, OpenAI messages, ShareGPT,
MT-Bench) must give the same system prompt, user turns, reference and category every time, assistant
turns must be dropped (the teacher re-answers them), and a bad row must raise PromptShapeError with
the stable reject reason code that the rejects table and its checks count.
"""

from __future__ import annotations

import pytest

from distillset.prompts.formats import NormalizedPrompt, PromptShapeError, normalize_row, prompt_text


def test_plain_row_keeps_prompt_system_category_and_reference():
    row = {"prompt": "Say hi.", "system": "Be kind.", "category": "chat", "reference": "hi"}
    assert normalize_row(row) == NormalizedPrompt(
        system="Be kind.", turns=["Say hi."], reference="hi", category="chat", source_format="plain"
    )


def test_plain_row_with_blank_system_has_no_system():
    assert normalize_row({"prompt": "Say hi.", "system": "  "}).system is None


def test_alpaca_joins_instruction_and_input_with_a_blank_line():
    prompt = normalize_row({"instruction": "Summarize.", "input": "Cats sleep.", "output": "They nap."})
    assert prompt.turns == ["Summarize.\n\nCats sleep."]
    assert prompt.source_format == "alpaca"
    assert prompt.reference is None


def test_alpaca_with_empty_input_is_the_instruction_alone():
    assert normalize_row({"instruction": "Name a color.", "input": ""}).turns == ["Name a color."]
    assert normalize_row({"instruction": "Name a color."}).turns == ["Name a color."]


def test_self_instruct_seed_uses_first_instance_input_and_name_as_category():
    row = {
        "id": "seed_task_1",
        "name": "antonym_relation",
        "instruction": "What is the relation?",
        "instances": [{"input": "Night : Day", "output": "antonyms"}, {"input": "ignored", "output": "x"}],
        "is_classification": False,
    }
    prompt = normalize_row(row)
    assert prompt.turns == ["What is the relation?\n\nNight : Day"]
    assert prompt.category == "antonym_relation"
    assert prompt.source_format == "alpaca"


def test_self_instruct_seed_with_empty_instance_input():
    row = {"name": "breakfast", "instruction": "Suggest a breakfast.", "instances": [{"input": "", "output": "Oats"}]}
    assert normalize_row(row).turns == ["Suggest a breakfast."]


def test_gsm8k_reference_is_the_text_after_the_last_marker():
    row = {"question": "How many?", "answer": "3 + 2 = <<3+2=5>>5 #### not this\n####  1,250 "}
    prompt = normalize_row(row)
    assert prompt.turns == ["How many?"]
    assert prompt.reference == "1,250"
    assert prompt.source_format == "gsm8k"


def test_question_answer_without_marker_keeps_the_whole_answer_as_reference():
    assert normalize_row({"question": "Capital of France?", "answer": " Paris "}).reference == "Paris"
    assert normalize_row({"question": "Capital of France?"}).reference is None


def test_openai_messages_keep_system_and_user_turns_and_drop_assistant():
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "A joke?"},
        ]
    }
    assert normalize_row(row) == NormalizedPrompt(
        system="Be brief.", turns=["Hi", "A joke?"], reference=None, category=None, source_format="openai_messages"
    )


def test_openai_messages_text_parts_are_joined():
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    assert normalize_row(row).turns == ["a\nb"]


def test_openai_messages_image_part_is_refused():
    row = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    with pytest.raises(PromptShapeError) as info:
        normalize_row(row)
    assert info.value.reason == "missing_field"


def test_sharegpt_maps_human_to_user_turns_and_drops_gpt():
    row = {
        "conversations": [
            {"from": "system", "value": "Answer in French."},
            {"from": "human", "value": "First"},
            {"from": "gpt", "value": "Premier"},
            {"from": "human", "value": "Second"},
        ]
    }
    prompt = normalize_row(row)
    assert (prompt.system, prompt.turns, prompt.source_format) == ("Answer in French.", ["First", "Second"], "sharegpt")


def test_mt_bench_is_multi_turn_with_joined_references():
    row = {"question_id": 111, "category": "math", "turns": ["3*7?", "3*8?"], "reference": ["21", "24"]}
    assert normalize_row(row) == NormalizedPrompt(
        system=None, turns=["3*7?", "3*8?"], reference="21\n\n24", category="math", source_format="mt_bench"
    )


def test_mt_bench_without_reference():
    prompt = normalize_row({"category": "writing", "turns": ["Write.", "Rewrite."]})
    assert prompt.reference is None
    assert prompt.turns == ["Write.", "Rewrite."]


def test_null_columns_count_as_absent_so_dense_table_rows_are_detected():
    row = {"prompt": None, "system": None, "messages": None, "question": "Why?", "answer": None}
    prompt = normalize_row(row)
    assert prompt.source_format == "gsm8k"
    assert prompt.reference is None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["not", "an", "object"], "not_an_object"),
        ("a string", "not_an_object"),
        ({"text": "no known key"}, "unknown_shape"),
        ({}, "unknown_shape"),
        ({"prompt": None}, "missing_field"),
        ({"prompt": 42}, "missing_field"),
        ({"instruction": ["a list"]}, "missing_field"),
        ({"instruction": "x", "instances": []}, "missing_field"),
        ({"turns": "one string"}, "missing_field"),
        ({"turns": ["ok", 3]}, "missing_field"),
        ({"messages": []}, "missing_field"),
        ({"messages": [{"role": "assistant", "content": "only an answer"}]}, "missing_field"),
        ({"messages": [{"content": "no role"}]}, "missing_field"),
        ({"messages": [{"role": "narrator", "content": "?"}]}, "unknown_shape"),
        ({"conversations": [{"from": "human", "value": 5}]}, "missing_field"),
        ({"prompt": "   \n\t"}, "empty_text"),
        ({"prompt": ""}, "empty_text"),
        ({"turns": ["fine", " "]}, "empty_text"),
        ({"messages": [{"role": "user", "content": ""}]}, "empty_text"),
        ({"prompt": "a\x00b"}, "invalid_text"),
        ({"prompt": "lone \ud800 surrogate"}, "invalid_text"),
    ],
)
def test_bad_rows_raise_with_a_reason_code(row, reason):
    with pytest.raises(PromptShapeError) as info:
        normalize_row(row)
    assert info.value.reason == reason
    assert str(info.value)


def test_prompt_shape_error_is_a_value_error():
    with pytest.raises(ValueError):
        normalize_row({"nothing": "here"})


def test_prompt_text_joins_system_and_turns_with_blank_lines():
    assert prompt_text("S", ["a", "b"]) == "S\n\na\n\nb"
    assert prompt_text(None, ["a", "b"]) == "a\n\nb"
    assert prompt_text(None, ["only"]) == "only"
