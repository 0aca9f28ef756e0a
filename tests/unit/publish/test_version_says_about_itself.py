"""What a published version says about itself is true (issue 11).

Protects: the simulated mark is counted from the rows (a version mixing simulated and real answers
says "mixed", with counts, in its manifest, on top of its card and on every row); nothing from a
file reaches the card as live HTML or Markdown; the card is a Hugging Face dataset card (YAML front
matter with license, language, task, size, and configs mapping each split to its files); no
absolute local path is published; the Parquet files hold a typed ``messages`` column and every
export is split into train and validation files.
"""

from __future__ import annotations

import json

import duckdb
import polars as pl
import yaml

from distillset.publish.protocol import publish_training_set
from distillset.publish.reader import list_versions, read_examples, read_manifest, verify_version
from helpers.publish import FIELDS, make_examples


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def _mixed(count: int = 12) -> pl.DataFrame:
    real = make_examples(count, simulated=False)
    simulated = make_examples(count, variant=" (sim)", simulated=True).filter(pl.col("split") == "train").head(3)
    return pl.concat([real, simulated.with_columns(teacher_origin=pl.lit("simulated"))])


def test_a_mixed_version_says_so_in_manifest_card_rows_and_exports(tmp_path):
    examples = _mixed()
    # A caller that thinks the endpoint is real must not hide the simulated rows (and the reverse).
    result = publish_training_set(
        str(tmp_path), "mix", examples, manifest_fields={**FIELDS, "simulated": False}, formats=["openai", "sharegpt"]
    )
    teacher = read_manifest(str(tmp_path), "mix")["teacher"]
    assert teacher["simulated"] == "mixed" and teacher["endpoint_kind"] == "mixed"
    assert (teacher["simulated_rows"], teacher["real_rows"]) == (3, 12)
    assert teacher["origins"] == {"remote": 12, "simulated": 3}
    assert teacher["served_models"] == {"meta-llama/Llama-3.1-405B-Instruct": 15}

    version_dir = tmp_path / "mix" / result.version
    card = (version_dir / "README.md").read_text()
    top = card.split("## What it is")[0]
    assert "**MIXED: part of this set is SIMULATED" in top and "3 of 15 examples" in top

    rows = pl.read_parquet(version_dir / "data.parquet")
    assert rows["simulated"].sum() == 3 and set(rows["teacher_origin"]) == {"simulated", "remote"}
    assert rows["served_model"].null_count() == 0
    sharegpt = [json.loads(line) for line in (version_dir / "sharegpt_train.jsonl").read_text().splitlines()]
    assert sum(r["simulated"] for r in sharegpt) == 3 and {r["teacher_origin"] for r in sharegpt} == {
        "simulated",
        "remote",
    }
    assert [v.simulated for v in list_versions(str(tmp_path), "mix")] == ["mixed"]


def test_an_all_real_version_is_not_simulated_whatever_the_caller_says(tmp_path):
    publish_training_set(str(tmp_path), "real", make_examples(6, simulated=False), manifest_fields={"simulated": True})
    teacher = read_manifest(str(tmp_path), "real")["teacher"]
    assert teacher["simulated"] is False and teacher["real_rows"] == 6 and teacher["simulated_rows"] == 0
    assert "SIMULATED" not in (tmp_path / "real" / "v0001" / "README.md").read_text()


def test_file_names_and_license_sidecars_cannot_inject_html_or_markdown(tmp_path):
    prompts = tmp_path / "my prompts"
    evil_file = str(prompts / "we`ird <img src=x onerror=alert(1)>.jsonl")
    evil_license = "<script>alert('x')</script> | **bold** [link](javascript:alert(1))"
    examples = make_examples(5, source_file=evil_file, license=evil_license)
    storage = tmp_path / "store"
    result = publish_training_set(
        str(storage), "safe", examples, manifest_fields={**FIELDS, "prompts_url": str(prompts)}
    )
    version_dir = storage / "safe" / result.version
    card = (version_dir / "README.md").read_text()
    for live in ("<img", "<script", "onerror=alert(1)>", "](javascript:", "**bold**"):
        assert live not in card, live
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in card and "&lt;script&gt;" in card
    # Every line of the files table still has its three cells (a "|" in a value cannot add one).
    assert all(line.count(" | ") == 2 for line in card.splitlines() if line.startswith("| data"))

    manifest_text = (version_dir / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert list(manifest["licenses"]["sources"]) == ["we`ird <img src=x onerror=alert(1)>.jsonl"]
    assert manifest["licenses"]["sources"]["we`ird <img src=x onerror=alert(1)>.jsonl"]["license"] == evil_license
    for published in (card, manifest_text):
        assert str(tmp_path) not in published, "no absolute local path"
    assert set(read_examples(str(storage), "safe")["source_file"]) == {"we`ird <img src=x onerror=alert(1)>.jsonl"}
    assert manifest["prompts_url"] == "my prompts"


def test_the_card_is_a_hub_dataset_card_whose_configs_load_two_splits(tmp_path):
    examples = make_examples(20)
    result = publish_training_set(
        str(tmp_path), "hub", examples, manifest_fields=FIELDS, formats=["openai", "sharegpt", "alpaca"]
    )
    version_dir = tmp_path / "hub" / result.version
    meta = _front_matter((version_dir / "README.md").read_text())
    assert meta["license"] == ["llama3.1", "mit"]
    assert meta["language"] == ["en"] and meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: {f["split"]: f["path"] for f in c["data_files"]} for c in meta["configs"]}
    assert configs == {
        "default": {"train": "train.parquet", "validation": "validation.parquet"},
        "openai": {"train": "train.jsonl", "validation": "validation.jsonl"},
        "sharegpt": {"train": "sharegpt_train.jsonl", "validation": "sharegpt_validation.jsonl"},
        "alpaca": {"train": "alpaca_train.jsonl", "validation": "alpaca_validation.jsonl"},
    }
    expected = {s: int((examples["split"] == s).sum()) for s in ("train", "validation")}
    assert expected["validation"] > 0
    for files in configs.values():
        for split, path in files.items():
            assert path in result.files, "every file a config names is in the manifest"
            if path.endswith(".jsonl"):
                assert len((version_dir / path).read_text().splitlines()) == expected[split]
            else:
                assert pl.read_parquet(version_dir / path)["split"].unique().to_list() == [split]
    assert verify_version(str(tmp_path), "hub", result.version) == []


def test_parquet_files_hold_typed_messages_and_a_split_column(tmp_path):
    examples = make_examples(9)
    result = publish_training_set(str(tmp_path), "typed", examples, manifest_fields=FIELDS)
    path = tmp_path / "typed" / result.version / "data.parquet"
    with duckdb.connect() as con:
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
        roles = con.execute(f"SELECT messages[1].role, split FROM '{path}' ORDER BY example_id").fetchall()
    assert types["messages"].replace('"', "") == "STRUCT(role VARCHAR, content VARCHAR)[]"
    assert "messages_json" not in types
    assert {r for r, _ in roles} <= {"user", "system"} and {s for _, s in roles} == {"train", "validation"}
    rows = pl.read_parquet(path).sort("example_id")
    expected = examples.sort("example_id")
    assert [json.dumps(m) for m in rows["messages"].to_list()] == [
        json.dumps(json.loads(m)) for m in expected["messages_json"]
    ]
    # Readers that want the JSON string still get it.
    back = read_examples(str(tmp_path), "typed", columns=["example_id", "messages_json"]).sort("example_id")
    assert [json.loads(m) for m in back["messages_json"]] == [json.loads(m) for m in expected["messages_json"]]
