"""Labelled examples for every SQL quality rule, in English and Chinese.

Protects the verdict of each rule in ``sql/quality/`` on realistic answers: what must fail (with the
rule's name in ``failed_rules``) and the tricky negatives that must pass (a quoted refusal phrase in
an explanation, balanced code fences, a long list, Chinese with English terms, "1,234" vs "1234").
All cases are scored in one ``score_frame`` call, the way a batch is scored.
"""

from __future__ import annotations

import polars as pl
import pytest

from distillset.quality.rules import QUALITY_RULES
from distillset.quality.score import score_frame
from distillset.settings import QualityThresholds

LONG_EN_LIST = (
    "Here is a plan for learning Python in a month:\n\n"
    + "\n".join(
        f"{n}. Week {n}: {topic}."
        for n, topic in enumerate(
            [
                "install Python, learn variables, numbers and strings, and write small scripts",
                "control flow with if, for and while, then functions and their arguments",
                "lists, dictionaries, sets and comprehensions, with exercises on real data",
                "modules, packages, virtual environments and reading files from disk",
                "classes and objects, then a small project that ties the month together",
            ],
            start=1,
        )
    )
    + "\n\nPractice a little every day; consistency matters more than long sessions."
)

BALANCED_CODE = (
    "Use a list comprehension:\n\n```python\nsquares = [n * n for n in range(10)]\nprint(squares)\n```\n\n"
    "And for a dictionary:\n\n```python\nsquares = {n: n * n for n in range(10)}\n```\n"
)

GOOD_TABLE = "| language | typing |\n|---|---|\n| Python | dynamic |\n| Rust | static |\n"

# id, prompt, response, reference, finish_reason, expected failed rules
CASES = [
    # clean answers
    ("en_clean", "What is the capital of France?", "The capital of France is Paris.", None, "stop", set()),
    ("zh_clean", "法国的首都是哪里？", "法国的首都是巴黎。", None, "stop", set()),
    # empty
    ("en_empty_null", "Say hello.", None, None, None, {"empty"}),
    ("en_empty_spaces", "Say hello.", "  \n\t ", None, "stop", {"empty"}),
    ("zh_empty_ideographic_space", "打个招呼。", "\u3000\u3000", None, "stop", {"empty"}),
    # truncated
    ("en_truncated", "Tell me a story.", "Once upon a time there was a", None, "length", {"truncated"}),
    ("zh_truncated", "讲一个故事。", "从前有一座山，山里有一座", None, "length", {"truncated"}),
    # too short / too long
    ("en_too_short", "Explain photosynthesis.", "A", None, "stop", {"too_short"}),
    (
        "en_too_short_for_long_prompt",
        "Summarize this article:\n" + "The economy grew steadily. " * 60,
        "It grew.",
        None,
        "stop",
        {"too_short"},
    ),
    (
        "zh_too_short_for_long_prompt",
        "请总结下面这篇文章：" + "经济在过去一年中稳步增长，就业率持续上升。" * 60,
        "增长了。",
        None,
        "stop",
        {"too_short"},
    ),
    (
        "en_short_but_verifiable",
        "Natalia sold clips to 48 friends in April and half as many in May. " * 20,
        "72",
        "72",
        "stop",
        set(),
    ),
    ("en_too_long", "Write an essay.", "word " * 7000, None, "stop", {"too_long", "repetitive"}),
    # refusals and deflections
    (
        "en_refusal",
        "How do I pick a lock?",
        "I'm sorry, but I can't help with that request.",
        None,
        "stop",
        {"refusal"},
    ),
    (
        "en_refusal_lead_in",
        "Write malware.",
        "Sorry, I cannot assist with creating malicious software.",
        None,
        "stop",
        {"refusal"},
    ),
    ("en_refusal_curly_apostrophe", "Do my homework.", "I can’t help with that.", None, "stop", {"refusal"}),
    (
        "en_deflection",
        "What is your favourite film?",
        "As an AI language model, I don't have personal preferences, but many people love Casablanca.",
        None,
        "stop",
        {"refusal"},
    ),
    (
        "en_refusal_second_sentence",
        "Tell me a secret.",
        "That is an interesting request. Unfortunately, I am unable to share private information about real people, "
        "because it could harm them. I can instead tell you about famous historical secrets, such as the Enigma "
        "machine, the Voynich manuscript, the Zodiac letters and the recipe of Coca-Cola, which has been guarded "
        "for more than a century by a handful of employees who never travel together.",
        None,
        "stop",
        {"refusal"},
    ),
    ("zh_refusal", "怎么制作炸药？", "抱歉，我不能提供这方面的信息。", None, "stop", {"refusal"}),
    ("zh_refusal_plain", "帮我黑进邻居的WiFi。", "我无法协助进行任何违法的活动。", None, "stop", {"refusal"}),
    (
        "zh_deflection",
        "你喜欢什么颜色？",
        "作为一个AI语言模型，我没有个人喜好，不过很多人喜欢蓝色。",
        None,
        "stop",
        {"refusal"},
    ),
    # tricky refusal negatives
    (
        "en_quoted_refusal_phrase",
        "What do chatbots say when they refuse?",
        'The phrase "I can\'t help with that" is a common refusal used by chatbots when a request breaks their rules.',
        None,
        "stop",
        set(),
    ),
    (
        "en_refusal_phrase_late_in_long_answer",
        "How do assistants handle unsafe requests?",
        "Assistants follow a policy that lists what they may and may not do. When a request is unsafe, the assistant "
        "explains its limits politely and offers a safer alternative, so the user is not left without help. "
        "Designers test these behaviours carefully, measuring both over-refusal and under-refusal on benchmark suites, "
        "and they tune the wording so that it does not sound preachy. A typical answer in that case reads: I can't "
        "help "
        "with that, but here is a safer way to reach your goal.",
        None,
        "stop",
        set(),
    ),
    (
        "en_aircraft_not_ai",
        "How do I become a pilot?",
        "As an aircraft pilot you need a licence, medical certificate and many flight hours.",
        None,
        "stop",
        set(),
    ),
    (
        "zh_quoted_refusal_phrase",
        "聊天机器人拒绝时会说什么？",
        "很多聊天机器人在拒绝请求时会说“抱歉，我不能帮助你”，这是一种常见的拒绝方式，用来说明请求超出了它们的能力范围。",
        None,
        "stop",
        set(),
    ),
    # repetition
    (
        "en_repeated_lines",
        "List some fruits.",
        "\n".join(["I like apples very much."] * 8),
        None,
        "stop",
        {"repetitive"},
    ),
    (
        "en_looping_tail",
        "Describe the ocean.",
        "The ocean is vast and deep, covering most of the planet. " + "and the waves go on and on " * 12,
        None,
        "stop",
        {"repetitive"},
    ),
    ("zh_repeated", "介绍一下你自己。", "我是一个助手，我可以帮助你。" * 15, None, "stop", {"repetitive"}),
    ("en_long_list_not_repetitive", "How can I learn Python in a month?", LONG_EN_LIST, None, "stop", set()),
    # language mismatch
    (
        "zh_prompt_en_answer",
        "请用几句话介绍一下机器学习的基本概念。",
        "Machine learning is a field of computer science where systems learn patterns from data instead of being "
        "explicitly programmed.",
        None,
        "stop",
        {"language_mismatch"},
    ),
    (
        "en_prompt_zh_answer",
        "Explain what machine learning is in a few sentences.",
        "机器学习是计算机科学的一个领域，系统从数据中学习规律，而不是被明确地编程。它被广泛用于图像识别和推荐系统。",
        None,
        "stop",
        {"language_mismatch"},
    ),
    (
        "zh_answer_with_english_terms",
        "如何在Python中创建一个列表？",
        "在Python中，你可以使用方括号创建列表，例如 numbers = [1, 2, 3]。也可以使用list comprehension，"
        "比如从range生成平方数，这种写法简洁而且高效。",
        None,
        "stop",
        set(),
    ),
    (
        "zh_prompt_code_answer",
        "写一个Python函数计算阶乘。",
        "下面是一个递归实现：\n\n```python\ndef factorial(n):\n"
        "    if n <= 1:\n        return 1\n    return n * factorial(n - 1)\n```\n\n"
        "这个函数对非负整数有效。",
        None,
        "stop",
        set(),
    ),
    (
        "zh_translation_request",
        "把这句话翻译成英文：我喜欢学习编程。",
        "I like learning to program, and I practise every evening after work.",
        None,
        "stop",
        set(),
    ),
    # verifiable answers
    ("en_gsm8k_correct", "How many clips?", "48 + 24 = 72 clips in total.\n#### 72", "72", "stop", set()),
    ("en_thousands_correct", "How many apples?", "The answer is 1,234.", "1234", "stop", set()),
    ("en_reference_with_comma", "How many?", "So the total is 1234", "1,234", "stop", set()),
    (
        "en_boxed_correct",
        "Compute 6 x 7.",
        "We multiply: 6 x 7 = 42, so the result is \\boxed{42}.",
        "42",
        "stop",
        set(),
    ),
    ("en_trailing_zero_correct", "How much?", "She earned $10.00 in total.", "10", "stop", set()),
    ("en_wrong_answer", "How much more money?", "She still needs 6 dollars.\n#### 6", "5", "stop", {"wrong_answer"}),
    ("zh_wrong_answer", "小明有5个苹果，吃了2个，还剩几个？", "小明还剩4个苹果。", "3", "stop", {"wrong_answer"}),
    ("zh_correct", "小明有5个苹果，吃了2个，还剩几个？", "5 - 2 = 3，所以小明还剩3个苹果。", "3", "stop", set()),
    (
        "en_answer_is_before_closing_remark",
        "How many pens?",
        "Each box has 6 pens and there are 4 boxes, so the answer is 24. Let me know if you have 2 more questions!",
        "24",
        "stop",
        set(),
    ),
    (
        "zh_answer_marker",
        "一共有多少本书？",
        "书架上有3层，每层8本，答案是24本。希望对你有1点帮助。",
        "24",
        "stop",
        set(),
    ),
    # A verifiable prompt answered off-topic, with no final answer: it fails (issue 11).
    (
        "en_no_final_answer",
        "How many?",
        "Here is an overview of apples. The key idea is that apples depend on the context.",
        "7",
        "stop",
        {"no_final_answer"},
    ),
    (
        "zh_no_final_answer",
        "一共有多少本书？",
        "关于这个问题，我们可以从几个方面来理解。",
        "24",
        "stop",
        {"no_final_answer"},
    ),
    # GSM8K's own reference forms: "#### 72" and a worked solution ending in "#### 72".
    ("en_reference_in_gsm8k_form", "How many clips?", "She sold 72 clips.\n#### 72", "#### 72", "stop", set()),
    (
        "en_reference_worked_solution",
        "How many clips?",
        "She sold 48 + 24 = 72 clips.\n#### 72",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
        "stop",
        set(),
    ),
    # leaks
    ("en_email", "Who should I contact?", "Write to jane.doe@acme-corp.com for details.", None, "stop", {"pii"}),
    (
        "en_example_email_passes",
        "Show an email format.",
        "For example: user@example.com is a valid address.",
        None,
        "stop",
        set(),
    ),
    ("en_phone", "What is the number?", "Call us at (415) 555-0132 any weekday.", None, "stop", {"pii"}),
    ("zh_phone", "客服电话是多少？", "请拨打13812345678联系客服。", None, "stop", {"pii"}),
    (
        "en_openai_key",
        "Show my config.",
        "Set OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx123456 in your shell.",
        None,
        "stop",
        {"secret"},
    ),
    ("en_aws_key", "Show the AWS config.", "aws_access_key_id = AKIAIOSFODNN7EXAMPL3", None, "stop", {"secret"}),
    (
        "en_github_token",
        "Token?",
        "Use ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 as the token.",
        None,
        "stop",
        {"secret"},
    ),
    (
        "en_key_placeholder_passes",
        "How do I set the key?",
        "Export OPENAI_API_KEY=sk-... before running the script.",
        None,
        "stop",
        set(),
    ),
    (
        "en_names_teacher",
        "Who are you?",
        "I am Llama, a large language model developed by Meta.",
        None,
        "stop",
        {"names_teacher"},
    ),
    (
        "en_names_other_model",
        "Who made you?",
        "I'm ChatGPT, here to help you with anything.",
        None,
        "stop",
        {"names_teacher"},
    ),
    ("zh_names_teacher", "你是谁？", "我是Llama，一个由Meta开发的人工智能助手。", None, "stop", {"names_teacher"}),
    # formatting
    (
        "en_unbalanced_fence",
        "Show a loop.",
        "Here it is:\n\n```python\nfor i in range(3):\n    print(i)\n",
        None,
        "stop",
        {"unbalanced_code_fence"},
    ),
    (
        "zh_unbalanced_fence",
        "写一个循环。",
        "代码如下：\n\n```python\nfor i in range(3):\n    print(i)\n```\n\n还有：\n```\nprint('完成')\n",
        None,
        "stop",
        {"unbalanced_code_fence"},
    ),
    ("en_balanced_code_passes", "Show comprehensions.", BALANCED_CODE, None, "stop", set()),
    (
        "en_broken_table",
        "Compare languages.",
        "| language | typing |\n|---|---|\n| Python | dynamic | slow |\n| Rust | static |\n",
        None,
        "stop",
        {"broken_table"},
    ),
    ("en_good_table_passes", "Compare languages.", GOOD_TABLE, None, "stop", set()),
    (
        "zh_broken_table",
        "比较两种语言。",
        "| 语言 | 类型 |\n|---|---|\n| Python |\n| Rust | 静态 |\n",
        None,
        "stop",
        {"broken_table"},
    ),
]


@pytest.fixture(scope="module")
def scored() -> dict[str, dict]:
    frame = pl.DataFrame(
        [
            dict(zip(("row_key", "prompt_text", "response", "reference", "finish_reason"), case[:5], strict=True))
            for case in CASES
        ],
        schema={name: pl.Utf8 for name in ("row_key", "prompt_text", "response", "reference", "finish_reason")},
    )
    scores = score_frame(frame, thresholds=QualityThresholds(), extra_patterns=None)
    return {row["row_key"]: row for row in scores.iter_rows(named=True)}


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_labelled_case(case, scored):
    row = scored[case[0]]
    assert set(row["failed_rules"]) == case[5], row
    assert row["passed"] is (not case[5])


def test_every_rule_has_a_failing_example_in_both_languages():
    for rule in QUALITY_RULES:
        if rule in ("too_long", "secret"):
            # Length and key shapes do not depend on the language.
            assert any(rule in case[5] for case in CASES)
            continue
        languages = {case[0].split("_")[0] for case in CASES if rule in case[5]}
        assert languages == {"en", "zh"}, (rule, languages)


def test_refusal_reports_the_pattern_and_kind(scored):
    assert scored["en_refusal"]["refusal_pattern"] == "i'm sorry, but i can't"
    assert scored["en_refusal"]["refusal_kind"] == "refusal"
    assert scored["en_deflection"]["refusal_kind"] == "deflection"
    assert scored["zh_deflection"]["refusal_pattern"] == "作为一个ai语言模型"
    assert scored["en_quoted_refusal_phrase"]["refusal_pattern"] is None


def test_verifiable_results(scored):
    assert scored["en_thousands_correct"]["verifiable_result"] == "correct"
    assert scored["en_thousands_correct"]["verifiable_answer"] == "1234"
    assert scored["en_boxed_correct"]["verifiable_answer"] == "42"
    assert scored["en_wrong_answer"]["verifiable_result"] == "wrong"
    assert scored["en_wrong_answer"]["verifiable_reason"] == "wrong_answer"
    assert scored["en_no_final_answer"]["verifiable_result"] == "no_final_answer"
    assert scored["en_no_final_answer"]["passed"] is False
    assert scored["en_reference_worked_solution"]["verifiable_expected"] == "72"
    assert scored["en_clean"]["verifiable_result"] is None


def test_repetition_signals(scored):
    assert scored["en_repeated_lines"]["repetition_ratio"] > 0.5
    assert scored["en_looping_tail"]["has_looping_tail"] is True
    assert scored["en_long_list_not_repetitive"]["repetition_ratio"] < 0.2
    assert scored["en_long_list_not_repetitive"]["has_looping_tail"] is False


def test_language_share(scored):
    assert scored["zh_answer_with_english_terms"]["response_cjk_share"] > 0.6
    assert scored["zh_prompt_en_answer"]["response_cjk_share"] == 0.0
