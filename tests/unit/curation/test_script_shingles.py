"""Mixed-script shingling (distillset.curation.shingles, ``mode="scripts"``) and the fast normalizer.

Protects: each script is split on its own terms in one unit stream (Han, kana and Hangul into
characters, Latin words and numbers into words, punctuation into single marks), so a light edit
of a Chinese instruction wrapped around a SQL query is found (the earlier per-document rule
missed it); pure English gets exactly the word shingles and pure Chinese the character shingles
of before; ``char_ngram`` applies to mostly-CJK documents when it differs from ``word_ngram``;
``normalize`` and ``normalize_many`` (full-width punctuation replaced first) equal
``ids.normalize_text`` on non-ASCII text (NFKC or not).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillset import ids
from distillset.curation import near_dedup
from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters
from distillset.curation.shingles import normalize, normalize_many, shingle_hashes, split_script_units

_SQL_TASK = (
    "根据自然语言描述，生成可以在数据库表执行的SQL语句。查询讲师平均工资高于整体平均水平的部门的名称和预算，"
    "给出两个表：讲师表和部门表。\nSELECT d.name, d.budget FROM instructor i JOIN department d ON i.dept_name = d.name "
    "GROUP BY i.dept_name HAVING AVG(i.salary) > (SELECT AVG(salary) FROM instructor)"
)
_CHINESE = (
    "机器学习是人工智能的一个分支，它使计算机能够在没有明确编程的情况下从数据中学习并改进其性能，广泛应用于图像识别和自然语言处理等领域。"
    "近年来，深度学习的发展使得这些技术在医疗、金融和交通等行业中取得了显著的成果，也带来了新的挑战。"
)


def _units(text: str) -> list[str]:
    return split_script_units(pl.Series([normalize(text)])).to_list()[0]


def _jaccard(texts: list[str], shingling: str) -> float:
    normalized = pl.Series([normalize(text) for text in texts])
    sets = near_dedup.shingle_sets(normalized, np.arange(len(texts)), NearDupParams(shingling=shingling))
    return float(sets.jaccard(np.array([0]), np.array([1]))[0])


def test_each_script_is_split_on_its_own_terms():
    assert _units("生成SQL语句: SELECT name FROM t1;") == [
        "生",
        "成",
        "sql",
        "语",
        "句",
        ":",
        "select",
        "name",
        "from",
        "t1",
        ";",
    ]
    # Japanese: kanji, hiragana and katakana are characters; the Latin word stays whole.
    assert _units("東京でPythonのコードを書く") == [
        "東",
        "京",
        "で",
        "python",
        "の",
        "コ",
        "ー",
        "ド",
        "を",
        "書",
        "く",
    ]
    # Korean: Hangul syllables are their own units, never glued to a Latin word (\w+ would be "db에서").
    assert _units("DB에서 데이터를 읽다") == ["db", "에", "서", "데", "이", "터", "를", "읽", "다"]
    assert _units("2022年11月20日") == ["2022", "年", "11", "月", "20", "日"]
    assert _units("rnbqkbnr/pp1ppppp/8 b KQkq - 1 2") == [
        "rnbqkbnr",
        "/",
        "pp1ppppp",
        "/",
        "8",
        "b",
        "kqkq",
        "-",
        "1",
        "2",
    ]


def test_light_edit_of_chinese_around_sql_is_found():
    edited = _SQL_TASK.replace("d.budget", "d.expenses").replace("平均水平", "平均值")
    # The earlier rule shingles this (under 30% CJK) by \w+ words: each Chinese clause is one
    # huge token, and one changed character removes it; script units keep the Chinese as characters.
    assert _jaccard([_SQL_TASK, edited], "auto") < 0.8 <= _jaccard([_SQL_TASK, edited], "scripts")
    found = near_duplicate_clusters(["a", "b"], [_SQL_TASK, edited])
    assert found["duplicate_of"].to_list() == [None, "a"]
    missed = near_duplicate_clusters(["a", "b"], [_SQL_TASK, edited], params=NearDupParams(shingling="auto"))
    assert missed["kept"].to_list() == [True, True]


def test_pure_english_shingles_are_unchanged():
    texts = [
        "The quick brown fox (age 3) jumps over the lazy dog, twice: a[b] != a(b).",
        "Natalia sold clips to 48 of her friends in April, and then half as many in May.",
    ]
    normalized = pl.Series([normalize(text) for text in texts])
    scripts = shingle_hashes(normalized, word_ngram=5, char_ngram=5, seed=3, mode="scripts")
    words = shingle_hashes(normalized, word_ngram=5, char_ngram=5, seed=3, mode="words")
    assert np.array_equal(scripts.hashes, words.hashes) and np.array_equal(scripts.offsets, words.offsets)


def test_pure_chinese_similarity_is_unchanged():
    edited = _CHINESE.replace("图像识别", "图片识别").replace("显著的", "明显的")
    other = _CHINESE.replace("深度学习", "强化学习")
    for pair in ([_CHINESE, edited], [_CHINESE, other], [edited, other]):
        assert _jaccard(pair, "scripts") == _jaccard(pair, "auto")
    units = shingle_hashes([normalize(_CHINESE)], word_ngram=5, char_ngram=5, mode="scripts").unit_counts
    assert units.tolist() == [len(_CHINESE.replace(" ", ""))]


def test_char_ngram_applies_to_mostly_cjk_documents():
    texts = [normalize(_CHINESE), normalize("one two three four five six seven eight")]
    shingles = shingle_hashes(texts, word_ngram=5, char_ngram=3, mode="scripts")
    assert shingles.is_cjk.tolist() == [True, False]
    assert np.diff(shingles.offsets).tolist() == [len(_CHINESE) - 2, 8 - 4]


@pytest.mark.parametrize(
    "text",
    [
        "根据描述，生成SQL语句：SELECT * FROM t",  # full-width punctuation: not NFKC
        "机器学习是人工智能的一个分支。\n\n  它使计算机\u3000学习 ",
        "Straße und ÆSIR, ǅemal, ﬁ",
        "e\u0301 and é, \x1c split\x1f here\u2028end",
        "温度是25℃，约77°F；½杯水",
        "ΣΑΣ σας ς",
    ],
)
def test_fast_normalize_equals_ids_normalize_text(text):
    assert normalize(text) == ids.normalize_text(text)


def test_normalize_many_equals_ids_normalize_text():
    texts = [
        "问题：（A）阿里巴巴，（B）台积电！",
        "ＡＢＣ\u0301 ｆｕｌｌ\u3000width…",
        "Ａ\u0301",
        "ﾃｽﾄ　半角",
        None,
        "",
        "plain ASCII  text",
        "温度是25℃，约77°F",
        "Straße ＳＴＲＡＳＳＥ",
    ]
    assert normalize_many(texts) == [ids.normalize_text(text or "") for text in texts]
