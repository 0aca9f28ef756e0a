"""Publishing training set versions to a local folder.

Protects: a version is complete before it is visible (files read back against the manifest's
checksums), unchanged content publishes nothing, a change gives the next version with its
parent, a failure mid-publish leaves no visible half version and the next publish recovers,
racing publishers end with distinct versions and no overwritten file, existing versions are
never modified, license policy blocks forbidden teachers, and no secret lands in a written file.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import socket
from pathlib import Path

import polars as pl
import pytest

from distillset.publish import protocol as publish
from distillset.publish.protocol import LicenseBlockedError, publish_training_set
from distillset.publish.reader import list_versions, read_examples, read_manifest, verify_version
from distillset.publish.rows import EXAMPLE_COLUMNS, content_hash
from distillset.training.split import assign_split
from helpers.publish import DATA_FILES, FIELDS, LLAMA, check_race, make_examples, race


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_publish_reads_back_with_checksums_and_lineage(tmp_path):
    examples = make_examples(12)
    result = publish_training_set(
        str(tmp_path), "math", examples, manifest_fields=FIELDS, formats=["openai", "sharegpt", "alpaca"]
    )

    assert result.published and result.version == "v0001" and result.parent_version is None
    version_dir = tmp_path / "math" / "v0001"
    for name, info in result.files.items():
        data = (version_dir / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["size"]
    assert set(result.files) == DATA_FILES | {"README.md"}
    assert verify_version(str(tmp_path), "math", "v0001") == []

    train = [json.loads(line) for line in (version_dir / "train.jsonl").read_text().splitlines()]
    validation = [json.loads(line) for line in (version_dir / "validation.jsonl").read_text().splitlines()]
    expected_train = [json.loads(m) for m in examples.filter(pl.col("split") == "train")["messages_json"]]
    assert (
        len(train) + len(validation) == examples.height and len(validation) == (examples["split"] == "validation").sum()
    )
    assert sorted(json.dumps(r["messages"]) for r in train) == sorted(json.dumps(m) for m in expected_train)
    assert any(len(r["messages"]) >= 4 for r in train + validation), "multi-turn examples must stay multi-turn"

    back = read_examples(str(tmp_path), "math", "v0001")
    assert back.sort("example_id")["example_id"].to_list() == examples.sort("example_id")["example_id"].to_list()
    assert set(EXAMPLE_COLUMNS) <= set(back.columns)

    manifest = read_manifest(str(tmp_path), "math")
    assert manifest["content_hash"] == result.content_hash
    assert manifest["teacher"]["endpoint_kind"] == "simulated" and manifest["teacher"]["model"] == LLAMA
    assert manifest["dagster_run_id"] == "run-123"
    assert manifest["counts"]["stages"] == FIELDS["counts"] and manifest["counts"]["examples"] == 12
    assert manifest["checks"] == {"refusal_rate": "passed"}
    assert manifest["code"]["version"] == "0.1.0"
    assert manifest["licenses"]["attribution"] == ["Built with Llama"]
    assert manifest["files"] == result.files

    card = (version_dir / "README.md").read_text()
    body = card.split("\n---\n", 1)[1].lstrip().splitlines()
    assert body[0] == "# math v0001" and body[2].startswith("> **SIMULATED: not real teacher output.**")
    assert '"train": "train.jsonl"' in card and "Built with Llama" in card
    assert str(tmp_path) not in card, "no absolute local path in the card"
    assert json.loads((tmp_path / "math" / "LATEST").read_text()) == {
        "version": "v0001",
        "content_hash": result.content_hash,
    }


def test_unchanged_content_publishes_nothing(tmp_path):
    first = publish_training_set(str(tmp_path), "math", make_examples(8), manifest_fields=FIELDS)
    before = snapshot(tmp_path / "math" / "v0001")
    again = publish_training_set(
        str(tmp_path), "math", make_examples(8).reverse(), manifest_fields={"dagster_run_id": "other"}
    )

    assert not again.published and again.version == "v0001" and again.content_hash == first.content_hash
    assert "unchanged" in again.reason
    assert [v.version for v in list_versions(str(tmp_path), "math")] == ["v0001"]
    assert snapshot(tmp_path / "math" / "v0001") == before


def test_changed_content_gives_next_version_and_keeps_the_old_one(tmp_path):
    publish_training_set(str(tmp_path), "math", make_examples(8), manifest_fields=FIELDS)
    before = snapshot(tmp_path / "math" / "v0001")
    second = publish_training_set(str(tmp_path), "math", make_examples(9), manifest_fields=FIELDS)
    third = publish_training_set(
        str(tmp_path), "math", make_examples(9), manifest_fields=FIELDS, formats=["openai", "alpaca"]
    )

    assert (second.published, second.version, second.parent_version) == (True, "v0002", "v0001")
    assert (third.published, third.version, third.parent_version) == (True, "v0003", "v0002"), (
        "formats are part of the content"
    )
    assert snapshot(tmp_path / "math" / "v0001") == before
    infos = list_versions(str(tmp_path), "math")
    assert [(v.version, v.counts["examples"]) for v in infos] == [("v0001", 8), ("v0002", 9), ("v0003", 9)]
    assert all(verify_version(str(tmp_path), "math", v.version) == [] for v in infos)


def test_failure_mid_publish_leaves_no_visible_version(tmp_path, monkeypatch):
    def broken_manifest(manifest):
        raise RuntimeError("disk full while writing the manifest")

    monkeypatch.setattr(publish, "manifest_bytes", broken_manifest)
    with pytest.raises(RuntimeError, match="disk full"):
        publish_training_set(str(tmp_path), "math", make_examples(6), manifest_fields=FIELDS)
    assert list_versions(str(tmp_path), "math") == []
    assert not (tmp_path / "math" / "v0001").exists()
    assert not list((tmp_path / "math").glob(".staging-*")) and not list((tmp_path / "math" / ".claims").glob("*"))

    monkeypatch.undo()
    result = publish_training_set(str(tmp_path), "math", make_examples(6), manifest_fields=FIELDS)
    assert result.published and result.version == "v0001"
    assert verify_version(str(tmp_path), "math", "v0001") == []


def test_crashed_publisher_leftovers_are_cleaned_once_stale(tmp_path, monkeypatch):
    # A crash (kill -9) skips the publisher's own cleanup: simulate it by disabling that cleanup.
    monkeypatch.setattr(publish, "_abandon", lambda *args, **kwargs: None)
    monkeypatch.setattr(publish, "manifest_bytes", lambda manifest: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        publish_training_set(str(tmp_path), "math", make_examples(6), manifest_fields=FIELDS)
    assert len(list((tmp_path / "math").glob(".staging-*"))) == 1
    assert list_versions(str(tmp_path), "math") == []
    monkeypatch.undo()

    # The claim belongs to a live process and is fresh: a careful publisher leaves it alone.
    fresh = publish_training_set(str(tmp_path), "math", make_examples(6), manifest_fields=FIELDS)
    assert fresh.version == "v0002" and len(list((tmp_path / "math").glob(".staging-*"))) == 1

    again = publish_training_set(str(tmp_path), "other", make_examples(3), manifest_fields=FIELDS, stale_after_s=0.0)
    assert again.version == "v0001"
    after = publish_training_set(str(tmp_path), "math", make_examples(7), manifest_fields=FIELDS, stale_after_s=0.0)
    assert after.version == "v0003" and after.parent_version == "v0002"
    assert not list((tmp_path / "math").glob(".staging-*")) and not list((tmp_path / "math" / ".claims").glob("*"))
    assert not (tmp_path / "math" / "v0001").exists(), "the stale claim on v0001 is released, never half-published"


def test_racing_threads_with_different_content_get_distinct_versions(tmp_path):
    frames = [make_examples(5 + i) for i in range(4)]
    results = race(str(tmp_path), frames)
    assert all(r.published for r in results)
    check_race(str(tmp_path), frames, results)


def test_racing_threads_with_the_same_content_publish_one_version(tmp_path):
    frames = [make_examples(400) for _ in range(4)]
    results = race(str(tmp_path), frames)
    check_race(str(tmp_path), frames, results)
    assert sum(r.published for r in results) == 1
    assert {r.version for r in results} == {"v0001"}
    assert [v.version for v in list_versions(str(tmp_path), "race")] == ["v0001"]
    assert not list((tmp_path / "race" / ".claims").glob("*")), "the content claim is released"


def _publish_same_in_process(storage_url: str) -> tuple[bool, str]:
    result = publish_training_set(storage_url, "race", make_examples(400), manifest_fields=FIELDS)
    return result.published, result.version


def test_racing_processes_with_the_same_content_publish_one_version(tmp_path):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        outcomes = list(pool.map(_publish_same_in_process, [str(tmp_path)] * 3))
    assert sorted(outcomes) == [(False, "v0001"), (False, "v0001"), (True, "v0001")]


def test_a_dead_publishers_content_claim_is_taken_over(tmp_path):
    frame = make_examples(6)
    digest = content_hash(frame, ["openai"])
    claim = tmp_path / "race" / ".claims" / f"content-{digest}"
    claim.parent.mkdir(parents=True)
    # A process of this host that no longer exists held it.
    claim.write_text(
        json.dumps(
            {"owner": "x", "host": socket.gethostname(), "pid": 2**22 + 7, "claimed_at": "2026-01-01T00:00:00+00:00"}
        )
    )
    result = publish_training_set(str(tmp_path), "race", frame, manifest_fields=FIELDS)
    assert result.published and result.version == "v0001" and not claim.exists()


def _publish_in_process(storage_url: str, count: int) -> tuple[bool, str]:
    result = publish_training_set(storage_url, "race", make_examples(count), manifest_fields=FIELDS)
    return result.published, result.version


def test_racing_processes_get_distinct_versions(tmp_path):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        outcomes = list(pool.map(_publish_in_process, [str(tmp_path)] * 3, [4, 5, 6]))
    assert sorted(v for _, v in outcomes) == ["v0001", "v0002", "v0003"]
    check_race(str(tmp_path), [make_examples(n) for n in (4, 5, 6)], [])


def test_license_policy_blocks_a_closed_teacher_and_writes_nothing(tmp_path):
    with pytest.raises(LicenseBlockedError, match="gpt-4o"):
        publish_training_set(str(tmp_path), "math", make_examples(4, teacher="gpt-4o"), manifest_fields=FIELDS)
    assert not (tmp_path / "math").exists() or list_versions(str(tmp_path), "math") == []


def test_bad_input_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="lack column"):
        publish_training_set(str(tmp_path), "math", make_examples(3).drop("license"), manifest_fields={})
    duplicated = pl.concat([make_examples(3), make_examples(3).head(1)])
    with pytest.raises(ValueError, match="share an example_id"):
        publish_training_set(str(tmp_path), "math", duplicated, manifest_fields={})
    with pytest.raises(ValueError, match="split"):
        publish_training_set(
            str(tmp_path), "math", make_examples(3).with_columns(split=pl.lit("test")), manifest_fields={}
        )
    with pytest.raises(ValueError, match="name"):
        publish_training_set(str(tmp_path), "../escape", make_examples(3), manifest_fields={})
    with pytest.raises(ValueError, match="export format"):
        publish_training_set(str(tmp_path), "math", make_examples(3), manifest_fields={}, formats=["csv"])
    assert not (tmp_path / "math").exists()


def test_no_secret_in_any_written_file(tmp_path, monkeypatch):
    secret = "sk-live-this-is-a-secret-teacher-key-0123456789"
    monkeypatch.setenv("TEACHER_API_KEY", secret)
    fields = {
        **FIELDS,
        "config": {"teacher": {"base_url": "http://127.0.0.1:9", "api_key": secret}},
        "note": f"called with {secret}",
        "aws_secret_access_key": "whatever-value",
    }
    publish_training_set(str(tmp_path), "math", make_examples(4), manifest_fields=fields)
    for path in (tmp_path / "math").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert secret.encode() not in content and b"whatever-value" not in content, path
    manifest = read_manifest(str(tmp_path), "math")
    assert manifest["config_hash"] and manifest["extra"]["note"] == "called with ***"


def test_assign_split_is_deterministic_and_stable():
    ids_ = pl.Series([f"example-{i}" for i in range(200)])
    first = assign_split(ids_, 0.1)
    assert first.to_list() == assign_split(ids_, 0.1).to_list()
    assert 5 <= (first == "validation").sum() <= 40
    grown = assign_split(pl.concat([ids_, pl.Series([f"new-{i}" for i in range(50)])]), 0.1)
    assert grown.head(200).to_list() == first.to_list(), "adding examples must not move existing ones"
    assert (assign_split(pl.Series(["a", "b"]), 0.01) == "validation").sum() == 1
    assert (assign_split(pl.Series(["a", "b"]), 0.0) == "validation").sum() == 0


def test_card_puts_license_warnings_on_top(tmp_path):
    from distillset.publish.licenses import LicensePolicy

    relaxed = LicensePolicy(block_teacher_forbids_training=False)
    examples = make_examples(4, teacher="gpt-4o", license="CC-BY-NC-4.0", simulated=False)
    result = publish_training_set(str(tmp_path), "closed", examples, manifest_fields=FIELDS, license_policy=relaxed)
    card = (tmp_path / "closed" / result.version / "README.md").read_text()
    head = card.split("## What it is")[0]
    assert "SIMULATED" not in card
    assert "non-commercial" in head and "prompts/sample.jsonl" in head.replace("\\", "")
    assert "restricted training other models" in head and "OpenAI Terms of Use" in head
    manifest = read_manifest(str(tmp_path), "closed")
    assert manifest["teacher"]["endpoint_kind"] == "remote"
    assert manifest["licenses"]["sources"]["prompts/sample.jsonl"]["category"] == "non_commercial"
    assert manifest["licenses"]["policy"]["block_teacher_forbids_training"] is False
