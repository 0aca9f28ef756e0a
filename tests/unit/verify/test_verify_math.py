"""Math verifier (distillset.verify.extract, distillset.verify.math): final answers against references.

Protects: the final answer is read from ``\\boxed{}`` (last, nested braces), "The final answer is",
"**Answer: 1,234**", "Answer:", "####" and, last, the last line's number; a later final-answer
marker beats a right number mentioned earlier; a response without a final answer is ``wrong`` /
``no_final_answer``; GSM8K references in all their forms (every shipped GSM8K test reference)
and LaTeX references; equivalence of fractions, decimals, percentages, units, currency and
thousands separators (including the ``1\\,234`` that math-verify reads as 235); power towers and
other expressions that hang math-verify come back quickly as ``answer_too_complex``; the
verifier works off the main thread and leaves the caller's SIGALRM handler and alarm alone.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from distillset.settings.paths import DATA_DIR
from distillset.verify.extract import extract_final_answer, normalize_answer, reference_answer
from distillset.verify.math import PARSE_CACHE_SIZE, _parsed, answers_equivalent, verify_math


@pytest.mark.parametrize(
    ("response", "final"),
    [
        ("9 * 2 = 18.\nThe final answer is: $\\boxed{18}$", "18"),
        ("First \\boxed{3}, then \\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
        ("The final answer is 72", "72"),
        ("We add 70 and 2.\n**Answer: 1,234**", "1,234"),
        ("Answer: 72", "72"),
        ("Work...\n#### 72", "72"),
        ("The final answer is:\n\n72", "72"),
        ("Answer: -5", "-5"),
        ("The answer is $\\frac{3}{4}$ cup.", "\\frac{3}{4}"),
        ("She has 3 apples and 5 pears.\nSo 8", "8"),
        ("答案是 42。", "42"),
    ],
)
def test_final_answer_is_read_from_every_marker(response, final):
    assert extract_final_answer(response) == final


def test_a_later_final_answer_beats_the_right_number_mentioned_earlier():
    response = "At first I got 72 eggs. Rechecking, she eats 2 more.\nThe final answer is 70."
    verdict = verify_math(response, "#### 72")
    assert (verdict.status, verdict.reason, verdict.expected, verdict.extracted) == (
        "wrong",
        "wrong_answer",
        "72",
        "70",
    )
    assert verdict.detail == "expected 72, got 70"


@pytest.mark.parametrize("response", ["I am not sure how to solve this.", "", "Let me think about it.\nDone!"])
def test_no_final_answer_is_wrong_never_a_pass(response):
    verdict = verify_math(response, "#### 72")
    assert (verdict.status, verdict.reason, verdict.extracted) == ("wrong", "no_final_answer", None)
    assert not verdict.passed


@pytest.mark.parametrize(
    "reference",
    [
        "#### 72",
        "72",
        "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 8 = <<9*8=72>>72.\n#### 72",
        "$72$",
        "\\boxed{72}",
    ],
)
def test_gsm8k_reference_forms(reference):
    assert verify_math("The final answer is $\\boxed{72}$.", reference).status == "correct"
    assert verify_math("The final answer is $\\boxed{71}$.", reference).status == "wrong"


def test_every_shipped_gsm8k_test_reference_is_understood():
    rows = [json.loads(line) for line in (DATA_DIR / "benchmarks" / "gsm8k_test.jsonl").read_text().splitlines()]
    assert len(rows) == 1319
    failures = []
    for row in rows:
        final = row["answer"].rsplit("####", 1)[1].strip()
        if verify_math(f"So the answer is {final}.", row["answer"]).status != "correct":
            failures.append(final)
    assert not failures
    # Thousands separators in references (e.g. "#### 1,600") read as plain numbers.
    assert reference_answer("Total: 1600 dollars\n#### 1,600") == "1,600"
    assert verify_math("The answer is 1600", "#### 1,600").passed


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("The answer is 3/4", "0.75"),
        ("The answer is \\boxed{0.75}", "\\frac{3}{4}"),
        ("The answer is \\boxed{\\dfrac{6}{8}}", "#### 0.75"),
        ("The answer is 75%", "#### 75"),
        ("The answer is \\boxed{75\\%}", "75"),
        ("The answer is 75 percent.", "75"),
        ("The answer is $18.", "#### 18"),
        ("The answer is \\boxed{\\$18}", "18"),
        ("The answer is 18 dollars.", "18"),
        ("The answer is \\boxed{18 \\text{ cm}}", "18"),
        ("The answer is 1,234", "#### 1234"),
        ("The answer is \\boxed{1{,}234}", "1234"),
        ("The answer is \\boxed{1\\,234}", "1234"),
        ("#### 72.00", "#### 72"),
        ("The answer is \\boxed{2\\sqrt{2}}", "\\sqrt{8}"),
        ("The answer is \\boxed{x = 5}", "5"),
        ("The answer is \\boxed{(0, \\infty)}", "(0,\\infty)"),
    ],
)
def test_equivalent_forms_are_correct(response, reference):
    verdict = verify_math(response, reference)
    assert verdict.status == "correct", verdict


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("The answer is 0.75", "75"),
        ("The answer is 3", "#### -3"),
        ("The answer is 1,235", "1234"),
        ("The answer is 7/4", "0.75"),
    ],
)
def test_different_values_are_wrong(response, reference):
    assert verify_math(response, reference).reason == "wrong_answer"


def test_normalization_removes_what_math_verify_misreads():
    assert normalize_answer("1\\,234") == "1234"  # math-verify alone reads 1\,234 as 235
    assert normalize_answer("\\$18") == "18"  # math-verify alone finds nothing outside $...$
    assert normalize_answer("$\\boxed{1,234}$") == "1234"
    assert normalize_answer("72^\\circ") == "72"
    assert normalize_answer("2x + 3 y") == "2x + 3 y"  # unit stripping only ever leaves a number
    assert normalize_answer("12,5") == "12,5"  # not a thousands separator: left to math-verify


@pytest.mark.parametrize(
    "answer",
    [
        "\\boxed{9^{9^{9}}}",
        "\\boxed{\\binom{100000000}{50000000}}",
        "\\boxed{\\gcd(10^{10^{10}}, 6)}",
        "\\boxed{\\sum_{i=1}^{100000000} \\frac{1}{i^2}}",
        "\\boxed{\\sqrt{2}^{1000000000}}",
    ],
)
def test_expressions_that_hang_math_verify_are_refused_fast(answer):
    started = time.monotonic()
    verdict = verify_math(f"The final answer is {answer}", "5")
    assert (verdict.status, verdict.reason) == ("unverifiable", "answer_too_complex")
    assert time.monotonic() - started < 2.0


def test_overlong_answers_and_free_text_references_are_unverifiable():
    assert verify_math("The answer is " + "1" * 300, "5").reason == "answer_too_long"
    assert verify_math("The answer is 3", "Area is 3").reason == "bad_reference"
    assert reference_answer("True.") is None


def test_works_from_worker_threads():
    cases = [("The final answer is $\\boxed{\\frac{3}{4}}$", "0.75", "correct"), ("Answer: 5", "#### 6", "wrong")] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda case: verify_math(case[0], case[1]).status, cases))
    assert statuses == [status for _, _, status in cases]
    results = []
    thread = threading.Thread(target=lambda: results.append(verify_math("The answer is 2/4", "\\frac{1}{2}")))
    thread.start()
    thread.join()
    assert results[0].passed


def test_leaves_the_callers_alarm_alone():
    fired = []

    def handler(*_):
        fired.append(True)

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.alarm(30)
        assert verify_math("The answer is \\boxed{\\frac{12}{16}}", "0.75").passed
        # math-verify's own timeout would have cancelled this alarm (alarm(0)) and put its handler back.
        assert signal.alarm(0) > 0
        assert signal.getsignal(signal.SIGALRM) is handler and not fired
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_parse_cache_is_bounded_and_equivalence_is_symmetric():
    assert _parsed.cache_info().maxsize == PARSE_CACHE_SIZE
    assert answers_equivalent("3/4", "\\frac{3}{4}") and answers_equivalent("\\frac{3}{4}", "3/4")
    assert not answers_equivalent("1", "2")
    assert not answers_equivalent("9^{9^{9}}", "5")
