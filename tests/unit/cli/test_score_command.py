"""`distillset score INPUT --out OUT` end to end, on real JSONL and Parquet files.

Protects: every input row comes back with all its fields (an ``id`` stays an ``id``, nested
``messages`` survive) plus the signals, ``score``, ``passed`` and ``failed_rules``; prompts come
from ``prompt`` or the user turns of ``messages``; the summary names the top failed rules; bad input
(missing fields, invalid JSON, unsupported files) fails with a clear message and writes nothing;
``--fail-on-gates`` turns a failed gate into exit status 1.
"""

from __future__ import annotations

import argparse
import json

import polars as pl
import pytest

from distillset.cli import score as score_command

ROWS = [
    {
        "id": "a1",
        "prompt": "What is 48 + 24?",
        "response": "48 + 24 = 72.\n#### 72",
        "reference": "72",
        "finish_reason": "stop",
    },
    {
        "id": "a2",
        "prompt": "How many apples?",
        "response": "There are 5 apples.",
        "reference": 6,
        "finish_reason": "stop",
    },
    {
        "id": "a3",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "请介绍一下长城。"},
            {"role": "assistant", "content": "长城是中国古代的军事防御工程。"},
            {"role": "user", "content": "它有多长？"},
        ],
        "response": "抱歉，我无法回答这个问题。",
        "tags": ["zh", "history"],
    },
    {
        "id": "a4",
        "prompt": "Tell me a story.",
        "response": "Once upon a time, a fox lived in a",
        "finish_reason": "length",
    },
    {
        "id": "a5",
        "prompt": "Name a colour.",
        "response": "Blue is a calm colour, often linked with the sky and the sea.",
    },
]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="distillset score")
    score_command.configure(parser)
    return score_command.run(parser.parse_args(argv))


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _check_scored(rows: list[dict]) -> None:
    assert [r["id"] for r in rows] == ["a1", "a2", "a3", "a4", "a5"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["a1"]["passed"] is True and by_id["a1"]["verifiable_result"] == "correct"
    assert by_id["a2"]["failed_rules"] == ["wrong_answer"]
    assert by_id["a3"]["failed_rules"] == ["refusal"]
    assert by_id["a3"]["refusal_pattern"] == "抱歉，我无法"
    assert by_id["a4"]["failed_rules"] == ["truncated"]
    assert by_id["a5"]["passed"] is True and 0.0 < by_id["a5"]["score"] <= by_id["a1"]["score"]


def test_jsonl_to_jsonl_keeps_every_field(tmp_path, capsys):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_jsonl(source, ROWS)
    assert _run([str(source), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    _check_scored(rows)
    for original, scored in zip(ROWS, rows, strict=True):
        assert {k: scored[k] for k in original} == original
    assert "row_key" not in rows[0] and "__distillset_row__" not in rows[0]
    printed = capsys.readouterr().out
    assert "scored 5 row(s)" in printed
    assert "passed: 2 (40.0%)" in printed
    assert "top failed rules:" in printed and "refusal 1" in printed and "truncated 1" in printed
    assert "gate refusal_rate: FAIL" in printed


def test_parquet_to_parquet_and_jsonl_to_parquet(tmp_path):
    source = tmp_path / "in.parquet"
    frame = pl.DataFrame(
        {
            "id": [r["id"] for r in ROWS],
            "prompt": [r.get("prompt", "请介绍一下长城。\n\n它有多长？") for r in ROWS],
            "response": [r["response"] for r in ROWS],
            "reference": [None if r.get("reference") is None else str(r["reference"]) for r in ROWS],
            "finish_reason": [r.get("finish_reason") for r in ROWS],
        }
    )
    frame.write_parquet(source)
    out = tmp_path / "out.parquet"
    assert _run([str(source), "--out", str(out)]) == 0
    scored = pl.read_parquet(out)
    assert scored.columns[:5] == frame.columns
    assert scored.select(frame.columns).equals(frame)
    _check_scored(scored.to_dicts())

    jsonl = tmp_path / "in.jsonl"
    _write_jsonl(jsonl, ROWS)
    out_from_jsonl = tmp_path / "from_jsonl.parquet"
    assert _run([str(jsonl), "--out", str(out_from_jsonl)]) == 0
    scored = pl.read_parquet(out_from_jsonl)
    _check_scored(scored.to_dicts())
    assert scored.filter(pl.col("id") == "a3").get_column("tags").to_list() == [["zh", "history"]]


def test_parquet_messages_column_gives_the_prompt(tmp_path):
    source = tmp_path / "messages.parquet"
    pl.DataFrame(
        {
            "id": [1, 2],
            "messages": [
                [{"role": "user", "content": "请解释一下什么是机器学习，以及它的主要应用领域有哪些。"}],
                [
                    {"role": "system", "content": "Answer in English."},
                    {"role": "user", "content": "What is machine learning?"},
                ],
            ],
            "response": [
                "Machine learning lets computers learn patterns from data instead of following hand-written rules.",
                "Machine learning lets computers learn patterns from data instead of following hand-written rules.",
            ],
        }
    ).write_parquet(source)
    out = tmp_path / "out.jsonl"
    assert _run([str(source), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["messages"][0]["role"] == "user"
    assert [r["language_mismatch"] for r in rows] == [True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1, "prompt": "hi"}\n', "row 1: missing field 'response'"),
        (
            '{"id": 1, "response": "hello"}\n',
            "row 1: needs a 'prompt' string, an Alpaca 'instruction', a GSM8K 'question' or a 'messages' list",
        ),
        ('{"id": 1, "prompt": "hi", "response": "hello"}\n{"id": 2,\n', "in.jsonl:2: invalid JSON"),
        ('["prompt", "response"]\n', "in.jsonl:1: a row must be a JSON object"),
        ('{"messages": [{"role": "assistant", "content": "x"}], "response": "y"}\n', "'messages' has no user turn"),
    ],
)
def test_bad_input_fails_clearly_and_writes_nothing(tmp_path, capsys, content, message):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(content, encoding="utf-8")
    assert _run([str(source), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]


def test_unsupported_and_same_file_are_refused(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ROWS[:1])
    assert _run([str(source), "--out", str(tmp_path / "out.csv")]) == 2
    assert "unsupported file type" in capsys.readouterr().err
    assert _run([str(source), "--out", str(source)]) == 2
    assert "--out must differ from the input" in capsys.readouterr().err
    assert _run([str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "input file not found" in capsys.readouterr().err


def test_fail_on_gates_sets_the_exit_status(tmp_path):
    source = tmp_path / "in.jsonl"
    _write_jsonl(source, ROWS)
    assert _run([str(source), "--out", str(tmp_path / "a.jsonl")]) == 0
    assert _run([str(source), "--out", str(tmp_path / "b.jsonl"), "--fail-on-gates"]) == 1
    _write_jsonl(source, [ROWS[0], ROWS[4]])
    assert _run([str(source), "--out", str(tmp_path / "c.jsonl"), "--fail-on-gates"]) == 0


def test_rescoring_replaces_the_previous_signals(tmp_path, capsys):
    source, first, second = tmp_path / "in.jsonl", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    _write_jsonl(source, ROWS)
    assert _run([str(source), "--out", str(first)]) == 0
    assert _run([str(first), "--out", str(second)]) == 0
    assert "replacing existing column(s)" in capsys.readouterr().err
    assert first.read_text(encoding="utf-8") == second.read_text(encoding="utf-8")


def test_reads_its_own_output_alpaca_output_and_gsm8k_references(tmp_path, capsys):
    # Issue 11: `messages` ending with the answer (distillset's own train.jsonl), Alpaca `output` and
    # GSM8K references in the dataset's own form ("#### 4", a worked solution) were refused or unverified.
    worked = "Tom has 2 apples and buys 2 more.\nSo he has 2 + 2 = <<2+2=4>>4 apples.\n#### 4"
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Tom has 2 apples and buys 2 more. How many apples does he have?"},
                {"role": "assistant", "content": "He has 2 + 2 = 4 apples.\n#### 4"},
            ],
            "reference": "#### 4",
        },
        {
            "instruction": "How many apples does Tom have?",
            "input": "Tom has 2 and buys 3.",
            "output": "He has 5.\n#### 5",
        },
        {"question": "Tom has 2 apples and buys 2 more. How many?", "answer": worked, "response": "2 + 2 = 4\n#### 4"},
        {"prompt": "Tom has 2 apples and buys 2 more. How many?", "response": "He has 5 apples.", "reference": worked},
        {
            "prompt": "Tom has 2 apples and buys 2 more. How many?",
            "response": "Apples are tasty.",
            "reference": "#### 4",
        },
    ]
    source, out = tmp_path / "train.jsonl", tmp_path / "scored.jsonl"
    _write_jsonl(source, rows)
    assert _run([str(source), "--out", str(out)]) == 0
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["verifiable_result"] for r in scored] == ["correct", None, "correct", "wrong", "no_final_answer"]
    assert scored[0]["messages"] == rows[0]["messages"] and scored[0]["response_chars"] == len(
        "He has 2 + 2 = 4 apples.\n#### 4"
    )
    assert scored[1]["output"] == rows[1]["output"] and scored[1]["passed"] is True
    assert [r["passed"] for r in scored] == [True, True, True, False, False]
    assert "1 without a final answer" in capsys.readouterr().out


def test_help_states_the_input_contract(capsys):
    parser = argparse.ArgumentParser(prog="distillset score")
    score_command.configure(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = capsys.readouterr().out
    for phrase in ("'response'", "Alpaca 'output'", "assistant", "'#### 72'", "GSM8K 'question'"):
        assert phrase in text, phrase
