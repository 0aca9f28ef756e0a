"""IFEval verifier (distillset.verify.ifeval, ifeval_checks, language): instruction following.

Protects: every instruction id in the shipped ``data/benchmarks/ifeval.jsonl`` has a checker;
each of the 25 checkers accepts a response that follows its instruction and rejects one that
does not; loose accepts what strict rejects only for the paper's eight variants (first/last line
removed, ``*`` removed); the four IFEval scores; the verdict names the failed ids; unknown ids
are ``unsupported_instruction``; the language detector names every language the shipped file asks for.
"""

from __future__ import annotations

import json

import pytest

from distillset.settings.paths import DATA_DIR
from distillset.verify.ifeval import (
    CHECKERS,
    UnsupportedInstruction,
    check_instructions,
    ifeval_scores,
    loose_variants,
    verify_ifeval,
)
from distillset.verify.ifeval_checks import split_sentences
from distillset.verify.language import SUPPORTED, detect_language
from distillset.verify.task import VerifiableTask, task_from_metadata

IFEVAL = DATA_DIR / "benchmarks" / "ifeval.jsonl"

# (instruction id, kwargs, a response that follows it, one that does not)
CASES = [
    ("keywords:existence", {"keywords": ["river", "stone"]}, "A stone sat by the River.", "A stone sat by the lake."),
    (
        "keywords:frequency",
        {"keyword": "tea", "frequency": 3, "relation": "at least"},
        "Tea, tea and TEA.",
        "Tea and tea.",
    ),
    ("keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "less than"}, "Just tea.", "Tea and tea."),
    ("keywords:forbidden_words", {"forbidden_words": ["bad", "ugly"]}, "A badge is fine.", "That was Bad."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 3, "let_relation": "at least"}, "Zizz zoo", "Zoo"),
    (
        "keywords:letter_frequency",
        {"letter": "e", "let_frequency": 2, "let_relation": "less than"},
        "A cat",
        "Elephants everywhere",
    ),
    (
        "language:response_language",
        {"language": "de"},
        "Das ist ein Haus, und es ist nicht klein.",
        "This is a house and it is not small.",
    ),
    ("language:response_language", {"language": "hi"}, "यह एक घर है और यह छोटा नहीं है।", "This is a house."),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "One. Two!",
        "One. Two? Three.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "at least"},
        "Dr. Smith came. He left.",
        "Dr. Smith paid 3.50 dollars.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.",
        "First.\n***\n***\nSecond.",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "at least"},
        "one two three four five",
        "one two three four",
    ),
    ("length_constraints:number_words", {"num_words": 3, "relation": "less than"}, "one two", "one two three"),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "however"},
        'Intro text.\n\n"However, this holds.',
        "Intro text.\n\nBut this holds.",
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], at [address].", "Dear [name]."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\nP.S. See you.", "Hello. See you."),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Hi.\n\nP.P.S. Bring cake.",
        "Hi.\n\nP.S. Bring cake.",
    ),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", "* one\n* two\n- three"),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Yes, definitely."),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*first* and **second**",
        "*first* and ** **",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\nA\nSECTION 2\nB",
        "SECTION 1\nA",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<My Poem>>\nRoses are red.", "My Poem\nRoses are red."),
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", "Same.\n******\nSame."),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a haiku."},
        "write a haiku. Leaves fall.",
        "Leaves fall.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'Done. Any other questions?"',
        "Any other questions? Done.",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "THIS is VERY nice",
        "This is VERY nice",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "This is VERY nice",
        "THIS is VERY nice",
    ),
    ("change_case:english_capital", {}, "THIS IS ALL CAPITAL AND IN ENGLISH.", "THIS IS Not ALL CAPITAL."),
    ("change_case:english_capital", {}, "THE HOUSE IS BIG.", "DAS HAUS IST NICHT KLEIN UND ES IST SCHÖN."),
    ("change_case:english_lowercase", {}, "this is all lowercase and in english.", "this is Not lowercase."),
    ("punctuation:no_comma", {}, "No commas here.", "One, two."),
    ("startend:quotation", {}, '"Wrapped in quotes."', '"Only opened.'),
]


def _shipped_rows() -> list[dict]:
    return [json.loads(line) for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_instruction_id_in_the_shipped_file_has_a_checker():
    ids = {instruction for row in _shipped_rows() for instruction in row["instruction_id_list"]}
    assert len(ids) == 25
    assert ids <= set(CHECKERS)


def test_every_checker_kind_is_exercised_here():
    assert {case[0] for case in CASES} == set(CHECKERS)


@pytest.mark.parametrize(
    ("instruction", "kwargs", "follows", "breaks"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_checker_accepts_and_rejects(instruction, kwargs, follows, breaks):
    assert check_instructions(follows, [instruction], [kwargs]) == [True]
    assert check_instructions(breaks, [instruction], [kwargs]) == [False]


def test_the_shipped_file_runs_through_every_checker_without_error():
    rows = _shipped_rows()
    scores = ifeval_scores(
        [row["prompt"] for row in rows], [r["instruction_id_list"] for r in rows], [r["kwargs"] for r in rows]
    )
    # Echoing the prompt follows some instructions (e.g. repeat_prompt) and not most.
    assert 0.0 < scores["instruction_strict"] < 0.5
    assert (
        scores["prompt_strict"] <= scores["prompt_loose"]
        and scores["instruction_strict"] <= scores["instruction_loose"]
    )


def test_loose_forgives_a_first_line_a_last_line_and_asterisks():
    assert len(loose_variants("a\nb\nc")) == 8
    wrapped = 'Sure, here it is:\n"Wrapped in quotes."\nHope that helps!'
    assert check_instructions(wrapped, ["startend:quotation"]) == [False]
    assert check_instructions(wrapped, ["startend:quotation"], loose=True) == [True]
    starred = "**Done. Any other questions?**"
    kwargs = [{"end_phrase": "Any other questions?"}]
    assert check_instructions(starred, ["startend:end_checker"], kwargs) == [False]
    assert check_instructions(starred, ["startend:end_checker"], kwargs, loose=True) == [True]
    # Loose is not "anything goes": no variant of a comma-laden text is comma-free.
    assert check_instructions("Hi, there,\nyou, too\nbye, now", ["punctuation:no_comma"], loose=True) == [False]


def test_a_blank_response_follows_nothing():
    assert check_instructions("   ", ["punctuation:no_comma", "change_case:english_lowercase"]) == [False, False]
    assert check_instructions("", ["punctuation:no_comma"], loose=True) == [False]


def test_scores_count_prompts_and_instructions():
    responses = ["there are no commas in this sentence", "Hello, world", "<<Title>>, with comma"]
    ids = [
        ["punctuation:no_comma", "change_case:english_lowercase"],
        ["punctuation:no_comma"],
        ["detectable_format:title", "punctuation:no_comma"],
    ]
    scores = ifeval_scores(responses, ids, [None, None, None])
    assert scores["prompt_strict"] == pytest.approx(1 / 3)
    assert scores["instruction_strict"] == pytest.approx(3 / 5)
    assert ifeval_scores([], [], []) == {
        "prompt_strict": 0.0,
        "prompt_loose": 0.0,
        "instruction_strict": 0.0,
        "instruction_loose": 0.0,
    }
    with pytest.raises(ValueError):
        ifeval_scores(["a"], [], [])


def test_verdict_names_the_failed_instructions():
    task = task_from_metadata(
        None, {"instruction_id_list": ["punctuation:no_comma", "detectable_format:title"], "kwargs": [{}, {}]}
    )
    good = verify_ifeval("<<A Title>> and no commas", task)
    assert (good.status, good.reason, good.verifier) == ("correct", "correct", "ifeval")
    bad = verify_ifeval("<<A Title>>, with a comma", task)
    assert (bad.status, bad.reason) == ("wrong", "instruction_not_followed")
    assert "punctuation:no_comma" in bad.detail and "detectable_format:title" not in bad.detail.split("(")[0]
    unknown = verify_ifeval("text", VerifiableTask.ifeval(["detectable_format:haiku"]))
    assert (unknown.status, unknown.reason) == ("unverifiable", "unsupported_instruction")
    with pytest.raises(UnsupportedInstruction):
        check_instructions("text", ["keywords:frequency"], [{"keyword": "a", "frequency": 1, "relation": "exactly"}])


def test_hugging_face_style_kwargs_with_null_values_are_accepted():
    kwargs = [{"num_words": 3, "relation": "at least", "keywords": None, "language": None}]
    assert check_instructions("one two three", ["length_constraints:number_words"], kwargs) == [True]


def test_sentence_splitting():
    assert len(split_sentences("Mr. Smith met Dr. Jones at 3.30 p.m. on example.com. They talked!")) == 2
    assert len(split_sentences("Wait... what? Yes.")) == 3
    assert len(split_sentences("J. R. R. Tolkien wrote books. The U.S.A. liked them.")) == 2


SENTENCES = {
    "en": "The weather is nice today, and we are going to the park with our friends.",
    "de": "Das Wetter ist heute schön, und wir gehen mit unseren Freunden in den Park.",
    "it": "Oggi il tempo è bello e andiamo al parco con i nostri amici.",
    "pt": "O tempo está bom hoje e nós vamos ao parque com os nossos amigos.",
    "fi": "Sää on tänään kaunis, ja menemme puistoon ystäviemme kanssa.",
    "sw": "Hali ya hewa ni nzuri leo, na tunaenda kwenye bustani pamoja na marafiki zetu.",
    "vi": "Hôm nay thời tiết đẹp và chúng tôi đi đến công viên với bạn bè của mình.",
    "ru": "Сегодня хорошая погода, и мы идём в парк с нашими друзьями.",
    "bg": "Времето днес е хубаво и ние отиваме в парка с нашите приятели.",
    "ar": "الطقس جميل اليوم ونحن ذاهبون إلى الحديقة مع أصدقائنا.",
    "fa": "امروز هوا خوب است و ما با دوستانمان به پارک می‌رویم.",
    "ur": "آج موسم اچھا ہے اور ہم اپنے دوستوں کے ساتھ پارک جا رہے ہیں۔",
    "hi": "आज मौसम अच्छा है और हम अपने दोस्तों के साथ पार्क जा रहे हैं।",
    "mr": "आज हवामान छान आहे आणि आम्ही आमच्या मित्रांसोबत उद्यानात जात आहोत.",
    "ne": "आज मौसम राम्रो छ र हामी साथीहरूसँग पार्कमा जाँदैछौं।",
    "bn": "আজ আবহাওয়া ভালো এবং আমরা বন্ধুদের সাথে পার্কে যাচ্ছি।",
    "pa": "ਅੱਜ ਮੌਸਮ ਵਧੀਆ ਹੈ ਅਤੇ ਅਸੀਂ ਦੋਸਤਾਂ ਨਾਲ ਪਾਰਕ ਜਾ ਰਹੇ ਹਾਂ।",
    "gu": "આજે હવામાન સારું છે અને અમે મિત્રો સાથે બગીચામાં જઈ રહ્યા છીએ.",
    "ta": "இன்று வானிலை நன்றாக உள்ளது, நாங்கள் நண்பர்களுடன் பூங்காவிற்கு செல்கிறோம்.",
    "te": "ఈరోజు వాతావరణం బాగుంది మరియు మేము స్నేహితులతో పార్కుకు వెళ్తున్నాము.",
    "kn": "ಇಂದು ಹವಾಮಾನ ಚೆನ್ನಾಗಿದೆ ಮತ್ತು ನಾವು ಸ್ನೇಹಿತರೊಂದಿಗೆ ಉದ್ಯಾನವನಕ್ಕೆ ಹೋಗುತ್ತಿದ್ದೇವೆ.",
    "th": "วันนี้อากาศดีและเรากำลังไปสวนสาธารณะกับเพื่อนๆ",
    "ko": "오늘 날씨가 좋아서 우리는 친구들과 공원에 갑니다.",
}


def test_language_detector_knows_every_language_the_shipped_file_asks_for():
    asked = {k["language"] for row in _shipped_rows() for k in row["kwargs"] if k.get("language")}
    assert asked <= set(SENTENCES) <= SUPPORTED
    wrong = {code: detect_language(text) for code, text in SENTENCES.items() if detect_language(text) != code}
    assert wrong == {}
    assert detect_language("12345 !!!") is None
