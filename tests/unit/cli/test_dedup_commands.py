"""The ``distillset dedup`` and ``distillset decontam`` commands, end to end on real files.

Protects: JSONL and Parquet in and out (by extension); every input row and field is written back
unchanged (``id`` stays ``id``, nested fields survive) plus the added columns; rows without an id
field are named by their 0-based row index; a GSM8K test question is flagged with its benchmark;
a missing field or file exits with code 2 and a message.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl
import pytest

from distillset.cli import decontam, dedup
from distillset.curation.decontam import BENCHMARKS_DIR

_LONG = (
    "The committee met on Tuesday to review the annual budget, discuss the new library building, "
    "and decide whether the summer festival should move from the park to the riverside square this year."
)
_OTHER = "Write a short story about a lighthouse keeper who befriends a seagull during a long winter storm at sea."


def _run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.configure(parser)
    return module.run(parser.parse_args(argv))


def _write(rows: list[dict], path: Path) -> None:
    if path.suffix == ".parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _read(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path)


@pytest.mark.parametrize("suffix_in,suffix_out", [(".jsonl", ".parquet"), (".parquet", ".jsonl")])
def test_dedup_command_keeps_fields_and_marks_duplicates(tmp_path, capsys, suffix_in, suffix_out):
    rows = [
        {"id": "p1", "prompt": _LONG, "meta": {"source": "a"}, "score": 0.2},
        {"id": "p2", "prompt": _LONG.upper(), "meta": {"source": "b"}, "score": 0.9},
        {"id": "p3", "prompt": _OTHER, "meta": {"source": "c"}, "score": 0.5},
    ]
    source, out = tmp_path / f"in{suffix_in}", tmp_path / f"out{suffix_out}"
    _write(rows, source)
    code = _run(dedup, [str(source), "--text-field", "prompt", "--out", str(out), "--priority-field", "score"])
    assert code == 0
    result = _read(out)
    assert result.columns == ["id", "prompt", "meta", "score", "cluster_id", "kept", "duplicate_of", "similarity"]
    assert result.select("id", "prompt", "meta", "score").to_dicts() == rows
    assert result["kept"].to_list() == [False, True, True]
    assert result["duplicate_of"].to_list() == ["p2", None, None]
    assert result["similarity"].to_list() == [1.0, None, None]
    assert capsys.readouterr().out.startswith("dedup: 3 rows, 2 kept, 1 dropped, 1 clusters")


def test_dedup_command_uses_row_index_without_id(tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write([{"text": _OTHER}, {"text": _LONG}, {"text": _OTHER + " "}], source)
    assert _run(dedup, [str(source), "--text-field", "text", "--out", str(out)]) == 0
    result = _read(out)
    assert result.columns == ["text", "cluster_id", "kept", "duplicate_of", "similarity"]
    assert result["cluster_id"].to_list() == ["0", "1", "0"]


def test_decontam_command_flags_benchmark_rows(tmp_path, capsys):
    question = json.loads((BENCHMARKS_DIR / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()[9])["question"]
    extra = tmp_path / "mine.jsonl"
    extra.write_text(json.dumps({"text": _OTHER}) + "\n", encoding="utf-8")
    rows = [{"id": "a", "q": "Please answer: " + question}, {"id": "b", "q": _LONG}, {"id": "c", "q": _OTHER}]
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    _write(rows, source)
    argv = [
        str(source),
        "--text-field",
        "q",
        "--out",
        str(out),
        "--benchmark",
        f"mine={extra}:text",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert _run(decontam, argv) == 0
    result = _read(out)
    assert result.select("id", "q").to_dicts() == rows
    assert result["contaminated"].to_list() == [True, False, True]
    assert result["benchmark"].to_list() == ["gsm8k_test", None, "mine"]
    assert result["benchmark_row"].to_list() == [10, None, 1]
    assert result["matched_ngram"][1] is None
    assert "3 rows, 2 contaminated (gsm8k_test: 1, mine: 1)" in capsys.readouterr().out
    assert list((tmp_path / "cache").glob("*.npz"))


@pytest.mark.parametrize("module", [dedup, decontam])
def test_missing_field_or_file_exits_2(tmp_path, capsys, module):
    source = tmp_path / "in.jsonl"
    _write([{"id": "a", "text": _OTHER}], source)
    extra = ["--cache-dir", str(tmp_path / "cache")] if module is decontam else []
    assert _run(module, [str(source), "--text-field", "nope", "--out", str(tmp_path / "o.jsonl"), *extra]) == 2
    assert "no field 'nope'" in capsys.readouterr().err
    assert (
        _run(
            module, [str(tmp_path / "absent.jsonl"), "--text-field", "text", "--out", str(tmp_path / "o.jsonl"), *extra]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("module", [dedup, decontam])
@pytest.mark.parametrize(
    ("out_name", "message"),
    [
        ("x.csv", "unsupported file type '.csv'"),
        ("a_file.txt/out.jsonl", "is not a folder"),
        ("a_folder.jsonl", "is a folder"),
    ],
)
def test_a_bad_out_is_refused_before_any_work(tmp_path, capsys, module, out_name, message):
    # Issue 11: `--out x.csv` failed with a traceback after the work was done.
    source = tmp_path / "in.jsonl"
    _write([{"id": "a", "text": _OTHER}], source)
    (tmp_path / "a_file.txt").write_text("not a folder", encoding="utf-8")
    (tmp_path / "a_folder.jsonl").mkdir()
    cache = tmp_path / "cache"
    extra = ["--cache-dir", str(cache)] if module is decontam else []
    # The text field is missing too: the output is checked first, so its error is the one reported.
    assert _run(module, [str(source), "--text-field", "nope", "--out", str(tmp_path / out_name), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "no field" not in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not cache.exists(), "no benchmark index is built for an output that cannot be written"


def test_malformed_jsonl_names_the_file_and_line(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "a", "text": _OTHER}) + "\n" + json.dumps({"id": "b", "text": _LONG}) + '\n{"id": "c",\n',
        encoding="utf-8",
    )
    assert _run(dedup, [str(source), "--text-field", "text", "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"{source}:3: invalid JSON" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.jsonl").exists()
