"""Publishing in bounded memory (issue 19): rows stream from a source in chunks, files are written
chunk by chunk, and one id is found in a version by its row groups.

Protects: a version larger than one chunk and one row group has the same files (bytes and hashes)
as the same rows published in one piece; a catalog partition streamed by DuckDB publishes the same
content hash as the frame (an existing version stays "unchanged"); the manifest's checksums are the
files'; rows changing between the two passes publish nothing; ``explain`` finds ids in the first and
the last row group and by prompt id through the index, and still finds them in a version without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from distillset import catalog
from distillset.audit.explain import explain
from distillset.publish.files import data_files
from distillset.publish.layout import DATA_INDEX, DATA_PARQUET, MANIFEST
from distillset.publish.lookup import find_published
from distillset.publish.protocol import SourceChangedError, publish_training_set
from distillset.publish.reader import list_versions, read_examples, verify_version
from distillset.publish.rows import content_hash, validated_examples
from distillset.publish.source import CatalogSource, FrameSource
from helpers.publish import DATA_FILES, FIELDS, LLAMA, make_examples

FORMATS = ["openai", "sharegpt", "alpaca"]
ROWS = 61
ROW_GROUP = 8


def _data_bytes(version_dir: Path) -> dict[str, bytes]:
    return {name: (version_dir / name).read_bytes() for name in sorted(DATA_FILES)}


def test_chunked_publish_writes_the_same_files_as_one_piece(tmp_path):
    examples = make_examples(ROWS).sample(fraction=1.0, shuffle=True, seed=3)
    chunked = publish_training_set(
        str(tmp_path / "a"),
        "math",
        examples,
        manifest_fields=FIELDS,
        formats=FORMATS,
        chunk_rows=7,
        row_group_rows=ROW_GROUP,
    )
    whole = publish_training_set(
        str(tmp_path / "b"),
        "math",
        examples,
        manifest_fields=FIELDS,
        formats=FORMATS,
        chunk_rows=10_000,
        row_group_rows=ROW_GROUP,
    )

    a, b = tmp_path / "a" / "math" / "v0001", tmp_path / "b" / "math" / "v0001"
    assert _data_bytes(a) == _data_bytes(b)
    assert {f: chunked.files[f] for f in DATA_FILES} == {f: whole.files[f] for f in DATA_FILES}
    assert chunked.content_hash == whole.content_hash == content_hash(examples, FORMATS)
    in_memory = data_files(validated_examples("math", examples), FORMATS, row_group_rows=ROW_GROUP)
    assert in_memory == _data_bytes(a), "the streamed files are the bytes of the in-memory path"

    manifest = json.loads((a / MANIFEST).read_text())
    for name, info in manifest["files"].items():
        data = (a / name).read_bytes()
        assert info == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert verify_version(str(tmp_path / "a"), "math") == []
    assert manifest[DATA_INDEX] == {"file": DATA_PARQUET, "sorted_by": "example_id", "row_group_rows": ROW_GROUP}
    assert manifest["counts"]["examples"] == ROWS

    parquet = pq.ParquetFile(a / DATA_PARQUET)
    assert parquet.metadata.num_row_groups == -(-ROWS // ROW_GROUP)
    ids = pl.read_parquet(a / DATA_PARQUET)["example_id"].to_list()
    assert ids == sorted(examples["example_id"].to_list())
    train = [json.loads(line) for line in (a / "train.jsonl").read_text().splitlines()]
    expected = examples.sort("example_id").filter(pl.col("split") == "train")["messages_json"].to_list()
    assert [r["messages"] for r in train] == [json.loads(m) for m in expected], "JSONL rows in example_id order"


# Sorted one example-id range at a time (catalog.key_ranges): one sort of 300k wide rows ran out of
# DuckDB's 256 MB; ranges of 1, 8 and all rows must stream the same version.
@pytest.mark.parametrize("range_rows", [1, 8, ROWS])
def test_a_catalog_partition_streams_to_the_same_version(tmp_path, monkeypatch, range_rows):
    monkeypatch.setattr(catalog, "SORT_RANGE_ROWS", range_rows)
    examples = make_examples(ROWS)
    other = make_examples(5, teacher="other/teacher", variant="x")
    path = tmp_path / "catalog.duckdb"
    catalog.replace_partition(path, "training_examples", examples, column="teacher_model", value=LLAMA)
    catalog.replace_partition(path, "training_examples", other, column="teacher_model", value="other/teacher")
    source = CatalogSource(path, partition=LLAMA, chunk_rows=9)
    assert source.count() == ROWS
    assert source.figures() == {
        "rows": ROWS,
        "splits": {s: int((examples["split"] == s).sum()) for s in ("train", "validation")},
        "simulated_rows": ROWS,
    }

    storage = str(tmp_path / "sets")
    streamed = publish_training_set(storage, "math", source, manifest_fields=FIELDS, row_group_rows=ROW_GROUP)
    assert streamed.published and streamed.content_hash == content_hash(examples, ["openai"])
    again = publish_training_set(storage, "math", examples, manifest_fields=FIELDS)
    assert not again.published and again.version == "v0001", "the frame's content is the streamed version's"

    frame = catalog.read_table(path, "training_examples", "WHERE teacher_model = ?", [LLAMA])
    one_piece = data_files(validated_examples("math", frame), ["openai"], row_group_rows=ROW_GROUP)
    assert one_piece == _data_bytes_of(tmp_path / "sets" / "math" / "v0001", one_piece)
    back = read_examples(storage, "math")
    assert back["example_id"].to_list() == sorted(examples["example_id"].to_list())


def _data_bytes_of(version_dir: Path, names) -> dict[str, bytes]:
    return {name: (version_dir / name).read_bytes() for name in names}


def test_a_catalog_partition_streams_the_same_version_on_every_backend(tmp_path, catalog_location):
    # The file, DuckLake with folder data, DuckLake with S3 data (tests/helpers/catalog.py).
    examples = make_examples(ROWS)
    other = make_examples(5, teacher="other/teacher", variant="x")
    catalog.replace_partition(catalog_location, "training_examples", examples, column="teacher_model", value=LLAMA)
    catalog.replace_partition(
        catalog_location, "training_examples", other, column="teacher_model", value="other/teacher"
    )
    source = CatalogSource(catalog_location, partition=LLAMA, chunk_rows=9)
    assert source.count() == ROWS
    storage = str(tmp_path / "sets")
    streamed = publish_training_set(storage, "math", source, manifest_fields=FIELDS, row_group_rows=ROW_GROUP)
    assert streamed.published and streamed.content_hash == content_hash(examples, ["openai"])
    back = read_examples(storage, "math")
    assert back["example_id"].to_list() == sorted(examples["example_id"].to_list())


class _ChangingSource(FrameSource):
    """A source whose rows change after the first pass (a catalog rewritten while publishing)."""

    def __init__(self, first: pl.DataFrame, second: pl.DataFrame):
        super().__init__(first, chunk_rows=5)
        self._second = FrameSource(second, chunk_rows=5)
        self._passes = 0

    def chunks(self):
        self._passes += 1
        yield from (super().chunks() if self._passes == 1 else self._second.chunks())


def test_rows_changing_between_the_passes_publish_nothing(tmp_path):
    source = _ChangingSource(make_examples(12), make_examples(12, variant="changed"))
    with pytest.raises(SourceChangedError):
        publish_training_set(str(tmp_path), "math", source, manifest_fields=FIELDS)
    assert list_versions(str(tmp_path), "math") == []
    assert not [p for p in (tmp_path / "math").rglob("*.jsonl")], "the half-written files are removed"


@pytest.fixture
def indexed_version(tmp_path):
    examples = make_examples(ROWS)
    storage = str(tmp_path / "sets")
    publish_training_set(storage, "math", examples, manifest_fields=FIELDS, row_group_rows=ROW_GROUP)
    return storage, examples.sort("example_id")


def test_explain_finds_ids_in_the_first_and_last_row_group_through_the_index(indexed_version):
    storage, examples = indexed_version
    first, last = examples.row(0, named=True), examples.row(-1, named=True)
    for row in (first, last):
        (hit,) = find_published(storage, row["example_id"], ["example_id", "prompt_id", "split"])
        assert hit.indexed and hit.version == "v0001"
        assert hit.rows == [{"example_id": row["example_id"], "prompt_id": row["prompt_id"], "split": row["split"]}]
        result = explain(None, storage, row["example_id"])
        assert result.status == "kept" and result.kind == "example"
        assert result.versions[0]["version"] == "v0001" and result.versions[0]["split"] == row["split"]
        assert result.source["source_line"] == row["source_line"]

    (by_prompt,) = find_published(storage, last["prompt_id"], ["example_id", "prompt_id"])
    assert by_prompt.indexed and [r["example_id"] for r in by_prompt.rows] == [last["example_id"]]
    assert list(find_published(storage, "no-such-id", ["example_id", "prompt_id"])) == []


def test_explain_still_scans_a_version_published_before_the_index(indexed_version):
    storage, examples = indexed_version
    manifest_path = Path(storage) / "math" / "v0001" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    del manifest[DATA_INDEX]
    manifest_path.write_text(json.dumps(manifest))
    row = examples.row(-1, named=True)

    (hit,) = find_published(storage, row["example_id"], ["example_id", "prompt_id", "split"])
    assert not hit.indexed and hit.rows[0]["example_id"] == row["example_id"]
    (by_prompt,) = find_published(storage, row["prompt_id"], ["example_id", "prompt_id"])
    assert [r["example_id"] for r in by_prompt.rows] == [row["example_id"]]
    assert explain(None, storage, row["example_id"]).status == "kept"


def test_the_explain_command_imports_neither_polars_nor_dagster(indexed_version, tmp_path):
    storage, examples = indexed_version
    script = (
        "import sys\n"
        "from orchestration.cli import main\n"
        f"code = main(['explain', {examples['example_id'][0]!r}, '--storage-url', {storage!r}])\n"
        "loaded = [m for m in ('polars', 'dagster', 'pyarrow') if m in sys.modules]\n"
        "print('LOADED', loaded)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "DISTILLSET_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "published in: math v0001" in done.stdout
    assert "LOADED []" in done.stdout


def test_a_chunked_version_on_s3_has_the_local_bytes_and_explains_through_the_index(s3_url, tmp_path):
    examples = make_examples(ROWS)
    on_s3 = publish_training_set(
        s3_url, "math", examples, manifest_fields=FIELDS, chunk_rows=7, row_group_rows=ROW_GROUP
    )
    local = publish_training_set(
        str(tmp_path), "math", examples, manifest_fields=FIELDS, chunk_rows=7, row_group_rows=ROW_GROUP
    )
    assert {f: i for f, i in on_s3.files.items() if f != "README.md"} == {
        f: i for f, i in local.files.items() if f != "README.md"
    }
    assert verify_version(s3_url, "math") == []
    row = examples.sort("example_id").row(-1, named=True)
    (hit,) = find_published(s3_url, row["example_id"], ["example_id", "split"])
    assert hit.indexed and hit.rows == [{"example_id": row["example_id"], "split": row["split"]}]
