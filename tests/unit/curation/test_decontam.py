"""Benchmark decontamination (distillset.curation.decontam): which prompts overlap a held-out test set.

Protects: a GSM8K test question pasted inside a longer prompt is found with the right benchmark
and 1-based row; a paraphrase without a shared 13-gram is not; IFEval prompts are found; a
Chinese benchmark is matched by character n-grams while a different Chinese text is not; short
benchmark items match whole; the ``DISTILLSET_BENCHMARKS`` syntax; the on-disk index cache is
reused on a second build (the file is not rewritten, the index says it was loaded).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from distillset.curation.decontam import (
    BENCHMARKS_DIR,
    Benchmark,
    BenchmarkIndex,
    DecontamParams,
    default_benchmarks,
    parse_benchmark_spec,
)


def _line(path: Path, number: int) -> dict:
    return json.loads(path.read_text(encoding="utf-8").splitlines()[number - 1])


@pytest.fixture(scope="module")
def shipped_index() -> BenchmarkIndex:
    return BenchmarkIndex.build(default_benchmarks(""))


def test_shipped_registry_lists_gsm8k_and_ifeval():
    benchmarks = {b.name: b for b in default_benchmarks("")}
    assert set(benchmarks) == {"gsm8k_test", "ifeval"}
    assert benchmarks["gsm8k_test"].text_fields == ("question",)
    assert benchmarks["ifeval"].text_fields == ("prompt",)
    assert benchmarks["ifeval"].license == "CC-BY-4.0"
    assert all(b.path.is_file() for b in benchmarks.values())


def test_gsm8k_question_inside_a_longer_prompt_is_found(shipped_index):
    question = _line(BENCHMARKS_DIR / "gsm8k_test.jsonl", 137)["question"]
    prompt = f"You are a careful tutor. Please SOLVE the following problem:\n\n{question}\n\nShow your work."
    hits = shipped_index.find(["p1", "clean"], [prompt, "Write a haiku about the sea and the moon at night."])
    assert hits["id"].to_list() == ["p1"]
    row = hits.row(0, named=True)
    assert row["benchmark"] == "gsm8k_test"
    assert row["benchmark_row"] == 137
    assert len(row["matched_ngram"].split(" ")) == 13
    assert row["matched_ngram"] in " ".join(re.findall(r"\w+", question.lower()))


def test_paraphrase_without_shared_13_gram_is_not_found(shipped_index):
    question = _line(BENCHMARKS_DIR / "gsm8k_test.jsonl", 1)["question"]
    words = question.split()
    # Every 12th word replaced: no window of 13 original words survives.
    paraphrase = " ".join("something" if i % 12 == 11 else word for i, word in enumerate(words))
    assert shipped_index.find(["x"], [paraphrase]).is_empty()
    assert shipped_index.find(["y"], [question]).row(0, named=True)["benchmark_row"] == 1


def test_ifeval_prompt_is_found(shipped_index):
    prompt = _line(BENCHMARKS_DIR / "ifeval.jsonl", 25)["prompt"]
    hits = shipped_index.find(["a"], ["Context: " + prompt.upper()])
    assert hits.row(0, named=True)["benchmark"] == "ifeval"
    assert hits.row(0, named=True)["benchmark_row"] == 25


def test_short_benchmark_item_matches_whole_with_token_boundaries(tmp_path):
    bench = tmp_path / "tiny.jsonl"
    bench.write_text('{"q": "what is the capital of peru"}\n{"q": "add 2 and 3"}\n', encoding="utf-8")
    index = BenchmarkIndex.build([Benchmark("tiny", bench, ("q",), "unknown")])
    hits = index.find(["a", "b", "c"], ["Quick: What is the capital of Peru?", "add 2 and 35", "add 2 and 3!"])
    assert hits["id"].to_list() == ["a", "c"]
    assert hits["matched_ngram"].to_list() == ["what is the capital of peru", "add 2 and 3"]
    assert hits["benchmark_row"].to_list() == [1, 2]


def test_chinese_benchmark_uses_character_ngrams(tmp_path):
    bench = tmp_path / "zh.jsonl"
    items = [
        {"instruction": "请解释一下为什么天空是蓝色的，并用简单的语言说明光的散射原理以及它与波长之间的关系。"},
        {"instruction": "小明有十二个苹果，他给了小红三个，又买了五个，请问小明现在一共有多少个苹果？"},
    ]
    bench.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n", encoding="utf-8")
    index = BenchmarkIndex.build(parse_benchmark_spec(f"zh_math={bench}:instruction"))
    texts = [
        "请回答下面的问题：小明有十二个苹果，他给了小红三个，又买了五个，请问小明现在一共有多少个苹果？谢谢",
        "请写一首关于春天的诗，描写花开和鸟鸣，以及人们在公园里散步的快乐心情。",
        "Translate: 请解释一下为什么天空是蓝色的，并用简单的语言说明光的散射原理",
    ]
    hits = index.find(["math", "poem", "mixed"], texts)
    assert hits["id"].to_list() == ["math", "mixed"]
    assert hits["benchmark"].to_list() == ["zh_math", "zh_math"]
    assert hits["benchmark_row"].to_list() == [2, 1]
    assert len(hits["matched_ngram"][0]) == DecontamParams().char_ngram


def test_benchmark_spec_syntax(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"question": "q", "other": "o"}\n', encoding="utf-8")
    detected, named, fields = parse_benchmark_spec(f"{data}, named={data}, f={data}:question+other")
    assert (detected.name, detected.text_fields) == ("mine", ("question",))
    assert (named.name, named.text_fields) == ("named", ("question",))
    assert fields.text_fields == ("question", "other")
    names = [b.name for b in default_benchmarks(f"named={data}")]
    assert names == ["gsm8k_test", "ifeval", "named"]
    with pytest.raises(ValueError, match="not found"):
        parse_benchmark_spec(f"x={tmp_path / 'missing.jsonl'}")


def test_index_cache_is_reused(tmp_path):
    cache = tmp_path / "cache"
    benchmarks = default_benchmarks("")
    first = BenchmarkIndex.build(benchmarks, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not first.loaded_from_cache
    written = files[0].stat().st_mtime_ns
    second = BenchmarkIndex.build(benchmarks, cache_dir=cache)
    assert second.loaded_from_cache
    assert files[0].stat().st_mtime_ns == written
    assert second.size == first.size
    question = _line(BENCHMARKS_DIR / "gsm8k_test.jsonl", 5)["question"]
    assert second.find(["q"], [question]).rows() == first.find(["q"], [question]).rows()
    # Other parameters are another index, not the cached one.
    third = BenchmarkIndex.build(benchmarks, params=DecontamParams(word_ngram=8), cache_dir=cache)
    assert not third.loaded_from_cache
    assert len(list(cache.glob("*.npz"))) == 2
