"""Protects reading raw prompt files into the ``raw_prompts`` table and its rejects.

The reader must find every prompt file under a folder (recursively, skipping hidden files and
license metadata), read JSON Lines, JSON arrays, Parquet and CSV, give every row its provenance
(file, line, file sha256, license by sidecar > licenses.json > default) and the exact schema of
docs/engine.md, turn each bad row into a reject with a stable reason and line instead of failing,
give the same ids on every read, read the shipped sample set cleanly, and read an ``s3://`` prefix
(moto's real S3 server on loopback) exactly like the local folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from distillset import ids
from distillset.prompts.files import RAW_PROMPTS_SCHEMA, REJECTS_SCHEMA, PromptReadResult, read_prompts
from distillset.prompts.formats import prompt_text
from distillset.settings.paths import DEFAULT_PROMPTS_URL
from helpers.paths import FIXTURES as HELPER_FIXTURES
from helpers.paths import PROJECT

FIXTURES = HELPER_FIXTURES / "prompts"
SAMPLE_PROMPTS = PROJECT / "data" / "sample_prompts"
INGESTED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FIXTURE_MAX_CHARS = 300

# The Parquet fixture is written by polars at test time rather than committed as a binary.
PARQUET_ROWS = {
    "prompt": ["Parquet prompt one", None],
    "system": ["Parquet system", None],
    "messages": [
        None,
        [{"role": "system", "content": "Table system"}, {"role": "user", "content": "Table question"}],
    ],
}


def make_prompt_dir(target: Path) -> Path:
    """The committed fixtures plus a Parquet file, copied to ``target``."""
    shutil.copytree(FIXTURES, target)
    pl.DataFrame(PARQUET_ROWS).write_parquet(target / "table.parquet")
    return target


@pytest.fixture(scope="module")
def prompt_dir(tmp_path_factory) -> Path:
    return make_prompt_dir(tmp_path_factory.mktemp("fixtures") / "prompts")


@pytest.fixture(scope="module")
def fixture_read(prompt_dir) -> PromptReadResult:
    return read_prompts(str(prompt_dir), max_chars=FIXTURE_MAX_CHARS, ingested_at=INGESTED_AT)


def rows_of(result: PromptReadResult, file_name: str) -> list[dict]:
    frame = result.prompts.filter(pl.col("source_file").str.ends_with("/" + file_name))
    return frame.sort("source_line").to_dicts()


def rejects_of(result: PromptReadResult, file_name: str) -> list[tuple]:
    frame = result.rejects.filter(pl.col("source_file").str.ends_with("/" + file_name))
    return [(r["source_line"], r["reason"]) for r in frame.sort("source_line", nulls_last=True).to_dicts()]


def shape(row: dict) -> tuple:
    return (row["source_line"], row["source_format"], row["system"], row["turns"], row["reference"], row["category"])


def test_schemas_match_the_engine_contract(fixture_read):
    assert fixture_read.prompts.schema == pl.Schema(RAW_PROMPTS_SCHEMA)
    assert list(RAW_PROMPTS_SCHEMA) == [
        "prompt_id",
        "text_hash",
        "system",
        "turns",
        "prompt_text",
        "reference",
        "category",
        "source_format",
        "source_file",
        "source_line",
        "source_sha256",
        "license",
        "ingested_at",
    ]
    assert RAW_PROMPTS_SCHEMA["turns"] == pl.List(pl.String)
    assert RAW_PROMPTS_SCHEMA["source_line"] == pl.Int64
    assert RAW_PROMPTS_SCHEMA["ingested_at"] == pl.Datetime("us", "UTC")
    assert fixture_read.rejects.schema == pl.Schema(REJECTS_SCHEMA)
    assert list(REJECTS_SCHEMA) == [
        "stage",
        "source_file",
        "source_line",
        "source_sha256",
        "reason",
        "detail",
        "raw_excerpt",
    ]


def test_counts_and_files_seen(fixture_read, prompt_dir):
    files = {Path(r["source_file"]).relative_to(prompt_dir).as_posix(): r for r in fixture_read.files.to_dicts()}
    # Hidden files, the hidden folder, sidecars and licenses.json are not prompt files.
    assert sorted(files) == [
        "alpaca.jsonl",
        "chat/openai_messages.jsonl",
        "chat/sharegpt.json",
        "gsm8k.csv",
        "mt_bench.jsonl",
        "notes.txt",
        "plain.jsonl",
        "table.parquet",
    ]
    counts = {name: (r["file_format"], r["rows_read"], r["rows_rejected"]) for name, r in files.items()}
    assert counts == {
        "alpaca.jsonl": ("jsonl", 3, 0),
        "chat/openai_messages.jsonl": ("jsonl", 3, 1),
        "chat/sharegpt.json": ("json", 2, 0),
        "gsm8k.csv": ("csv", 4, 2),
        "mt_bench.jsonl": ("jsonl", 2, 0),
        "notes.txt": ("unsupported", 0, 1),
        # 12 lines, one of them empty: skipped, neither a prompt nor a reject.
        "plain.jsonl": ("jsonl", 11, 8),
        "table.parquet": ("parquet", 2, 0),
    }
    assert fixture_read.prompts.height == 3 + 2 + 2 + 2 + 2 + 3 + 2
    assert fixture_read.rejects.height == 1 + 2 + 1 + 8
    assert set(fixture_read.rejects["stage"]) == {"raw_prompts"}


def test_rows_come_in_sorted_file_then_line_order(fixture_read, prompt_dir):
    order = [
        (Path(r["source_file"]).relative_to(prompt_dir).as_posix(), r["source_line"])
        for r in fixture_read.prompts.select("source_file", "source_line").to_dicts()
    ]
    assert order == sorted(order)


def test_plain_rows_and_every_jsonl_reject_reason(fixture_read):
    assert [shape(r) for r in rows_of(fixture_read, "plain.jsonl")] == [
        (1, "plain", None, ["What is 2 + 2?"], None, None),
        (2, "plain", "You are a translator.", ["Translate 'bonjour' into English."], None, "translation"),
        (12, "plain", None, ["Name three primary colors."], "red, yellow, blue", None),
    ]
    assert rejects_of(fixture_read, "plain.jsonl") == [
        (4, "empty_text"),
        (5, "invalid_json"),
        (6, "invalid_utf8"),
        (7, "not_an_object"),
        (8, "unknown_shape"),
        (9, "missing_field"),
        (10, "too_long"),
        (11, "invalid_text"),
    ]


def test_reject_rows_carry_detail_and_excerpt(fixture_read):
    rejects = {
        r["source_line"]: r
        for r in fixture_read.rejects.filter(pl.col("source_file").str.ends_with("/plain.jsonl")).to_dicts()
    }
    assert rejects[5]["raw_excerpt"] == '{"prompt": "unterminated'
    assert rejects[6]["raw_excerpt"] == '{"prompt": "caf\ufffd au lait"}'
    assert rejects[10]["raw_excerpt"] == '{"prompt": "' + "L" * 188
    assert "301" in rejects[10]["detail"] and str(FIXTURE_MAX_CHARS) in rejects[10]["detail"]
    assert "'text'" in rejects[8]["detail"]
    sha = hashlib.sha256((FIXTURES / "plain.jsonl").read_bytes()).hexdigest()
    assert set(r["source_sha256"] for r in rejects.values()) == {sha}


def test_alpaca_and_self_instruct_rows(fixture_read):
    assert [shape(r) for r in rows_of(fixture_read, "alpaca.jsonl")] == [
        (1, "alpaca", None, ["Summarize the text.\n\nCats sleep a lot."], None, None),
        (2, "alpaca", None, ["Give a synonym of happy."], None, None),
        (
            3,
            "alpaca",
            None,
            ["What is the relation between the given pairs?\n\nNight : Day :: Right : Left"],
            None,
            "antonym_relation",
        ),
    ]


def test_mt_bench_rows_are_two_turns_with_references(fixture_read):
    assert [shape(r) for r in rows_of(fixture_read, "mt_bench.jsonl")] == [
        (1, "mt_bench", None, ["Write a haiku about rain.", "Now make it about snow."], None, "writing"),
        (2, "mt_bench", None, ["What is 3 * 7?", "And 3 * 8?"], "21\n\n24", "math"),
    ]


def test_csv_rows_are_numbered_by_data_row_and_bad_rows_rejected_alone(fixture_read):
    # Row 1 spans two physical lines (a quoted newline); numbering counts data rows, not lines.
    assert [shape(r) for r in rows_of(fixture_read, "gsm8k.csv")] == [
        (1, "gsm8k", None, ["Tom has 3 apples and buys 2 more. How many apples does he have?"], "5", None),
        (3, "gsm8k", None, ["A plain question, no marker?"], "The answer is 1000.", None),
    ]
    assert rejects_of(fixture_read, "gsm8k.csv") == [(2, "empty_text"), (4, "invalid_utf8")]


def test_openai_messages_and_sharegpt_rows(fixture_read):
    assert [shape(r) for r in rows_of(fixture_read, "chat/openai_messages.jsonl")] == [
        (1, "openai_messages", "Be brief.", ["Hi there", "Tell me a joke."], None, None),
        (2, "openai_messages", None, ["Describe\nthe sea."], None, None),
    ]
    assert rejects_of(fixture_read, "chat/openai_messages.jsonl") == [(3, "missing_field")]
    # A .json file holding one array: rows are numbered by position in the array.
    assert [shape(r) for r in rows_of(fixture_read, "chat/sharegpt.json")] == [
        (1, "sharegpt", "You answer in French.", ["How are you?"], None, None),
        (2, "sharegpt", None, ["First question", "Second question"], None, None),
    ]


def test_parquet_rows_with_null_columns(fixture_read):
    assert [shape(r) for r in rows_of(fixture_read, "table.parquet")] == [
        (1, "plain", "Parquet system", ["Parquet prompt one"], None, None),
        (2, "openai_messages", "Table system", ["Table question"], None, None),
    ]


def test_unsupported_file_is_one_reject(fixture_read):
    reject = fixture_read.rejects.filter(pl.col("reason") == "unsupported_file").to_dicts()
    assert len(reject) == 1
    assert reject[0]["source_file"].endswith("/notes.txt")
    assert reject[0]["source_line"] is None


def test_license_resolution_order(fixture_read):
    licenses = {Path(r["source_file"]).name: r["license"] for r in fixture_read.files.to_dicts()}
    assert licenses == {
        # The sidecar wins over the licenses.json entry; its first non-empty line is the id.
        "plain.jsonl": "CC0-1.0",
        # The folder's own licenses.json.
        "openai_messages.jsonl": "Apache-2.0",
        # Not in chat/licenses.json: the parent's licenses.json, by path relative to it.
        "sharegpt.json": "MIT",
        "alpaca.jsonl": "CC-BY-NC-4.0",
        # Nowhere: the default.
        "gsm8k.csv": "unknown",
        "mt_bench.jsonl": "unknown",
        "table.parquet": "unknown",
        "notes.txt": "unknown",
    }
    per_row = fixture_read.prompts.group_by("license").len().sort("license").rows()
    assert per_row == [("Apache-2.0", 2), ("CC-BY-NC-4.0", 3), ("CC0-1.0", 3), ("MIT", 2), ("unknown", 6)]


def test_default_license_argument(prompt_dir):
    result = read_prompts(str(prompt_dir / "mt_bench.jsonl"), default_license="CC-BY-4.0")
    assert set(result.prompts["license"]) == {"CC-BY-4.0"}


def test_provenance_and_ids(fixture_read, prompt_dir):
    for row in fixture_read.prompts.to_dicts():
        path = Path(row["source_file"])
        assert path.parent == prompt_dir or path.parent.parent == prompt_dir
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["source_sha256"] == sha
        assert row["prompt_id"] == ids.prompt_id(sha, row["source_line"])
        assert row["prompt_text"] == prompt_text(row["system"], row["turns"])
        assert row["text_hash"] == ids.sha256_hex(ids.normalize_text(row["prompt_text"]))
        assert row["ingested_at"] == INGESTED_AT
    assert fixture_read.prompts["prompt_id"].n_unique() == fixture_read.prompts.height


def test_ids_are_deterministic_and_follow_content_not_path(fixture_read, prompt_dir, tmp_path):
    again = read_prompts(str(prompt_dir), max_chars=FIXTURE_MAX_CHARS)
    assert again.prompts["prompt_id"].to_list() == fixture_read.prompts["prompt_id"].to_list()
    assert again.prompts["text_hash"].to_list() == fixture_read.prompts["text_hash"].to_list()
    assert again.rejects.drop("detail").equals(fixture_read.rejects.drop("detail"))
    moved = tmp_path / "elsewhere" / "renamed.jsonl"
    moved.parent.mkdir()
    shutil.copy(prompt_dir / "mt_bench.jsonl", moved)
    moved_ids = read_prompts(str(moved)).prompts["prompt_id"].to_list()
    assert moved_ids == [r["prompt_id"] for r in rows_of(fixture_read, "mt_bench.jsonl")]


def test_text_hash_ignores_case_and_spacing(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        '{"prompt": "What is  2 + 2?"}\n{"prompt": "what is 2 + 2?\\n"}\n', encoding="utf-8"
    )
    result = read_prompts(str(tmp_path))
    hashes = result.prompts["text_hash"].to_list()
    assert hashes[0] == hashes[1]
    assert result.prompts["prompt_id"].n_unique() == 2


def test_max_chars_default_counts_system_and_turns(tmp_path):
    rows = [
        {"prompt": "x" * 100_000},
        {"prompt": "x" * 100_001},
        {"system": "s" * 50_000, "prompt": "x" * 49_998},
        {"system": "s" * 50_000, "prompt": "x" * 49_999},
    ]
    (tmp_path / "long.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = read_prompts(str(tmp_path))
    assert result.prompts["source_line"].to_list() == [1, 3]
    assert [(r["source_line"], r["reason"]) for r in result.rejects.to_dicts()] == [(2, "too_long"), (4, "too_long")]


def test_json_file_holding_json_lines_is_read_line_by_line(tmp_path):
    (tmp_path / "lines.json").write_text('{"prompt": "one"}\n\n{"prompt": "two"}\n{oops\n', encoding="utf-8")
    result = read_prompts(str(tmp_path))
    assert result.prompts.select("source_line", "turns").rows() == [(1, ["one"]), (3, ["two"])]
    assert [(r["source_line"], r["reason"]) for r in result.rejects.to_dicts()] == [(4, "invalid_json")]


def test_a_json_array_saved_as_jsonl_is_read_as_the_array(tmp_path):
    # Issue 11: a pretty-printed array in a .jsonl became one invalid_json reject per physical line.
    rows = [{"prompt": "one"}, {"instruction": "two", "input": "", "output": "x"}, {"prompt": "   "}]
    (tmp_path / "array.jsonl").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    result = read_prompts(str(tmp_path))
    assert result.prompts.select("source_line", "turns").rows() == [(1, ["one"]), (2, ["two"])]
    assert [(r["source_line"], r["reason"]) for r in result.rejects.to_dicts()] == [(3, "empty_text")]


def test_a_broken_json_array_in_jsonl_is_one_reject(tmp_path):
    text = json.dumps([{"prompt": "one"}, {"prompt": "two"}], indent=2)[:-3]  # the closing "}" and "]" lost
    (tmp_path / "broken.jsonl").write_text(text, encoding="utf-8")
    (tmp_path / "ok.jsonl").write_text('{"prompt": "fine"}\n', encoding="utf-8")
    result = read_prompts(str(tmp_path))
    assert result.prompts["turns"].to_list() == [["fine"]]
    assert result.rejects.height == 1
    reject = result.rejects.row(0, named=True)
    assert reject["reason"] == "invalid_json"
    assert reject["detail"].startswith("this is a JSON array, not JSON Lines")
    assert reject["raw_excerpt"].startswith("[")


def test_a_jsonl_line_holding_an_array_stays_one_rejected_line(tmp_path):
    (tmp_path / "lines.jsonl").write_text('["not", "a row"]\n{"prompt": "fine"}\n', encoding="utf-8")
    result = read_prompts(str(tmp_path))
    assert result.prompts.select("source_line", "turns").rows() == [(2, ["fine"])]
    assert [(r["source_line"], r["reason"]) for r in result.rejects.to_dicts()] == [(1, "not_an_object")]


def test_jsonl_with_bom_and_crlf_line_endings(tmp_path):
    (tmp_path / "win.jsonl").write_bytes(b'\xef\xbb\xbf{"prompt": "one"}\r\n{"prompt": "two"}\r\n')
    result = read_prompts(str(tmp_path))
    assert result.prompts.select("source_line", "turns").rows() == [(1, ["one"]), (2, ["two"])]
    assert result.rejects.height == 0


def test_corrupt_parquet_and_dangling_file_are_unreadable_file_rejects(tmp_path):
    (tmp_path / "ok.jsonl").write_text('{"prompt": "fine"}\n', encoding="utf-8")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    try:
        os.symlink(tmp_path / "missing" / "gone.jsonl", tmp_path / "gone.jsonl")
    except OSError as exc:
        pytest.skip(f"cannot create a dangling symlink here ({exc}), so an unreadable file cannot be made")
    result = read_prompts(str(tmp_path))
    assert result.prompts["turns"].to_list() == [["fine"]]
    rejects = {Path(r["source_file"]).name: r for r in result.rejects.to_dicts()}
    assert {name: r["reason"] for name, r in rejects.items()} == {
        "broken.parquet": "unreadable_file",
        "gone.jsonl": "unreadable_file",
    }
    assert rejects["broken.parquet"]["source_sha256"] == hashlib.sha256(b"PAR1 this is not parquet").hexdigest()
    assert rejects["gone.jsonl"]["source_sha256"] is None


def test_missing_url_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_prompts(str(tmp_path / "nope"))


def test_folder_without_prompt_files_raises_value_error(tmp_path):
    (tmp_path / "README.md").write_text("nothing here\n", encoding="utf-8")
    (tmp_path / "a.jsonl.license").write_text("MIT\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no prompt files"):
        read_prompts(str(tmp_path))
    with pytest.raises(ValueError, match="holds no prompt files"):
        read_prompts(str(tmp_path / "README.md"))


def test_malformed_licenses_json_is_a_clear_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "x"}\n', encoding="utf-8")
    (tmp_path / "licenses.json").write_text('{"a.jsonl": ["MIT"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="licenses.json"):
        read_prompts(str(tmp_path))


def test_single_file_url_uses_its_sidecar(prompt_dir):
    result = read_prompts(str(prompt_dir / "plain.jsonl"), max_chars=FIXTURE_MAX_CHARS)
    assert result.prompts.height == 3
    assert set(result.prompts["license"]) == {"CC0-1.0"}
    assert result.rejects.height == 8


def test_naive_ingested_at_is_taken_as_utc(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"prompt": "x"}\n', encoding="utf-8")
    result = read_prompts(str(tmp_path), ingested_at=datetime(2026, 5, 6, 7, 8, 9))
    assert result.prompts["ingested_at"].to_list() == [datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)]


def test_shipped_sample_set_reads_cleanly():
    assert DEFAULT_PROMPTS_URL == str(SAMPLE_PROMPTS)
    result = read_prompts(DEFAULT_PROMPTS_URL)
    assert result.rejects.height == 0
    assert result.prompts.height == 320
    counts = dict(result.prompts.group_by("source_format").len().rows())
    assert counts == {"gsm8k": 240, "mt_bench": 80}
    licenses = dict(result.prompts.group_by("source_format").agg(pl.col("license").unique().first()).rows())
    assert licenses == {"gsm8k": "MIT", "mt_bench": "Apache-2.0"}
    mt = result.prompts.filter(pl.col("source_format") == "mt_bench")
    assert set(mt["turns"].list.len()) == {2}
    assert mt["category"].n_unique() == 8
    assert mt["reference"].is_not_null().sum() == 39
    gsm = result.prompts.filter(pl.col("source_format") == "gsm8k")
    first = json.loads((SAMPLE_PROMPTS / "gsm8k_train_sample.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert gsm["turns"][0].to_list() == [first["question"]]
    assert gsm["reference"][0] == first["answer"].split("####")[-1].strip()
    assert gsm["reference"].is_null().sum() == 0


# --- S3, through moto's real server on loopback -------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint():
    server_module = pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return moto_endpoint


def upload_tree(endpoint: str, bucket: str, prefix: str, folder: Path) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
            )


def test_s3_prefix_reads_like_the_local_folder(s3_env, prompt_dir, fixture_read):
    upload_tree(s3_env, "prompts-bucket", "raw/v1", prompt_dir)
    # A fresh filesystem instance: fsspec caches them, and another test may have used other settings.
    remote = read_prompts(
        "s3://prompts-bucket/raw/v1",
        max_chars=FIXTURE_MAX_CHARS,
        ingested_at=INGESTED_AT,
        storage_options={"skip_instance_cache": True},
    )
    local = fixture_read
    assert remote.prompts.drop("source_file").equals(local.prompts.drop("source_file"))
    assert remote.rejects.drop("source_file", "detail").equals(local.rejects.drop("source_file", "detail"))
    assert remote.files.drop("source_file").equals(local.files.drop("source_file"))
    expected_files = [
        "s3://prompts-bucket/raw/v1/" + Path(p).relative_to(prompt_dir).as_posix() for p in local.files["source_file"]
    ]
    assert remote.files["source_file"].to_list() == expected_files


def test_s3_missing_prefix_raises_file_not_found(s3_env):
    upload_tree(s3_env, "empty-bucket", "x", FIXTURES / "chat")
    with pytest.raises(FileNotFoundError):
        read_prompts("s3://empty-bucket/not/there", storage_options={"skip_instance_cache": True})


def test_symlinks_leaving_the_prompts_folder_are_rejected_not_read(tmp_path):
    # Issue 11: a link to /etc/passwd put its lines into rejects.raw_excerpt.
    root, outside = tmp_path / "prompts", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text(
        '{"prompt": "SECRET outside the root"}\nroot:x:0:0:SECRET\n', encoding="utf-8"
    )
    (outside / "folder").mkdir()
    (outside / "folder" / "more.jsonl").write_text('{"prompt": "SECRET in a folder"}\n', encoding="utf-8")
    (root / "real.jsonl").write_text('{"prompt": "inside"}\n', encoding="utf-8")
    (root / "sub").mkdir()
    try:
        os.symlink(outside / "secret.jsonl", root / "passwd.jsonl")
        os.symlink(outside / "folder", root / "linked_folder")
        os.symlink(root / "real.jsonl", root / "sub" / "alias.jsonl")  # stays inside: read
    except OSError as exc:
        pytest.skip(f"cannot create symlinks here ({exc})")

    result = read_prompts(str(root))
    assert sorted(result.prompts["turns"].to_list()) == [["inside"], ["inside"]]
    rejects = {Path(r["source_file"]).name: r for r in result.rejects.to_dicts()}
    assert {name: r["reason"] for name, r in rejects.items()} == {
        "passwd.jsonl": "outside_prompts_root",
        "linked_folder": "outside_prompts_root",
    }
    assert all(r["raw_excerpt"] is None and r["source_sha256"] is None for r in rejects.values())
    everything = json.dumps(result.rejects.to_dicts() + result.prompts.drop("ingested_at").to_dicts(), default=str)
    assert "SECRET" not in everything

    followed = read_prompts(str(root), follow_symlinks=True)
    assert ["SECRET outside the root"] in followed.prompts["turns"].to_list()
    assert "outside_prompts_root" not in followed.rejects["reason"].to_list()


def test_follow_symlinks_is_a_setting_that_defaults_to_false():
    from distillset.settings import load_settings

    assert load_settings({}).prompts.follow_symlinks is False
    assert load_settings({"DISTILLSET_FOLLOW_SYMLINKS": "true"}).prompts.follow_symlinks is True
