"""Self-consistency (distillset.verify.consistency): the majority answer of N samples.

Protects: answers are grouped by math equivalence (``0.75``, ``3/4``, ``\\frac{3}{4}`` are one
vote), the share counts responses without a final answer, ties and thin majorities are no
majority, and every verdict is labelled ``self_consistency`` (agreement, not ground truth).
"""

from __future__ import annotations

from distillset.verify.consistency import majority_answer, self_consistency_verdicts

SAMPLES = [
    "So the result is 0.75.\nThe final answer is 0.75",
    "The answer is \\boxed{\\frac{3}{4}}",
    "#### 3/4",
    "The final answer is 0.5",
    "I cannot tell.",
]


def test_equivalent_answers_form_one_group():
    answer, votes, share = majority_answer(SAMPLES)
    assert (answer, votes) == ("0.75", 3)
    assert share == 3 / 5


def test_no_final_answer_anywhere_is_no_majority():
    assert majority_answer(["No idea.", "Hmm."]) == (None, 0, 0.0)
    assert majority_answer([]) == (None, 0, 0.0)


def test_verdicts_are_labelled_self_consistency():
    verdicts = self_consistency_verdicts(SAMPLES)
    assert {v.verifier for v in verdicts} == {"self_consistency"}
    assert [v.reason for v in verdicts] == [
        "agrees_with_majority",
        "agrees_with_majority",
        "agrees_with_majority",
        "disagrees_with_majority",
        "no_final_answer",
    ]
    assert verdicts[3].status == "wrong" and verdicts[3].expected == "0.75" and verdicts[3].extracted == "0.5"
    assert verdicts[0].detail == "3 of 5 samples answer 0.75"


def test_ties_and_thin_majorities_are_unverifiable():
    tie = self_consistency_verdicts(["The answer is 1", "The answer is 2", "The answer is 1", "The answer is 2"])
    assert {v.reason for v in tie} == {"no_majority"} and {v.status for v in tie} == {"unverifiable"}
    thin = self_consistency_verdicts(["The answer is 1", "The answer is 1", "The answer is 2", "No.", "No.", "No."])
    assert {v.reason for v in thin[:3]} == {"no_majority"}
    single = self_consistency_verdicts(["The answer is 7"])
    assert single[0].reason == "no_majority"  # one vote is below min_votes=2
    assert self_consistency_verdicts(["The answer is 7"], min_votes=1)[0].reason == "agrees_with_majority"
