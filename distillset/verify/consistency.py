"""Self-consistency: the majority final answer of N samples of one prompt that has no reference.

For prompts that ask for one final answer but carry no reference, agreement among samples is the
best available signal (Wang et al., "Self-Consistency Improves Chain of Thought Reasoning", 2022).
Each response's final answer is read as ``extract.find_final_answer`` does; answers are grouped
by math-verify equivalence (``math.answers_equivalent``: ``0.75``, ``3/4`` and
``\\frac{3}{4}`` are one group), in order of first appearance.

**Majority** (``majority_answer``): the largest group, its normalized answer, its votes and its
share of *all* responses (a response without a final answer votes for nothing). A tie for the
largest group goes to the group seen first in ``majority_answer``, and is no majority at all in
``self_consistency_verdicts``.

**Verdicts** carry verifier ``self_consistency``, never ``math``: a ``correct`` here means "agrees
with the majority", which is not a check against ground truth. A majority needs at least
``min_votes`` votes and a share of at least ``min_share``; without one, answers are
``unverifiable``/``no_majority``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from distillset.verify.extract import find_final_answer, normalize_answer
from distillset.verify.math import answers_equivalent
from distillset.verify.verdict import CORRECT, UNVERIFIABLE, WRONG, Verdict


class Majority(NamedTuple):
    """The majority answer of a group of responses.

    Attributes:
        answer: the normalized final answer of the largest group (None when no response has one).
        votes: how many responses gave it.
        share: ``votes`` over the number of responses (0.0 for none).
    """

    answer: str | None
    votes: int
    share: float


def _group(responses: Sequence[str]) -> tuple[list[str | None], list[tuple[str, list[int]]]]:
    """Each response's normalized final answer, and the groups as (representative, member indexes)."""
    answers: list[str | None] = []
    groups: list[tuple[str, list[int]]] = []
    by_text: dict[str, int] = {}
    for index, response in enumerate(responses):
        found = find_final_answer(response)
        answer = normalize_answer(found.text) if found else ""
        answers.append(answer or None)
        if not answer:
            continue
        group = by_text.get(answer)
        if group is None:
            group = next((g for g, (rep, _) in enumerate(groups) if answers_equivalent(rep, answer)), None)
        if group is None:
            groups.append((answer, []))
            group = len(groups) - 1
        by_text[answer] = group
        groups[group][1].append(index)
    return answers, groups


def majority_answer(responses: Sequence[str]) -> Majority:
    """The answer most responses agree on, with its votes and share.

    Args:
        responses: N sampled responses to one prompt.

    Returns:
        ``Majority(answer, votes, share)``; ``(None, 0, 0.0)`` when no response has a final answer.
    """
    _, groups = _group(responses)
    if not groups:
        return Majority(None, 0, 0.0)
    answer, members = max(groups, key=lambda group: len(group[1]))  # max keeps the first of equals
    return Majority(answer, len(members), len(members) / len(responses))


def self_consistency_verdicts(responses: Sequence[str], *, min_share: float = 0.5, min_votes: int = 2) -> list[Verdict]:
    """One verdict per response: does it agree with the majority answer of the group?

    Args:
        responses: N sampled responses to one prompt without a reference.
        min_share: the majority's least share of all responses.
        min_votes: the majority's least number of votes.

    Returns:
        Per response, in order: ``correct``/``agrees_with_majority``,
        ``wrong``/``disagrees_with_majority``, ``wrong``/``no_final_answer``, or
        ``unverifiable``/``no_majority`` (no answer reached ``min_votes`` and ``min_share``, or a tie).
    """
    answers, groups = _group(responses)
    sizes = sorted((len(members) for _, members in groups), reverse=True)
    winner = max(groups, key=lambda group: len(group[1])) if groups else None
    total = len(responses)
    has_majority = (
        winner is not None
        and len(winner[1]) >= min_votes
        and len(winner[1]) / total >= min_share
        and (len(sizes) < 2 or sizes[0] > sizes[1])
    )
    verdicts = []
    for index, answer in enumerate(answers):
        if answer is None:
            verdicts.append(Verdict(WRONG, "no_final_answer", "self_consistency", detail="no final answer found"))
            continue
        if not has_majority:
            detail = f"largest group has {sizes[0]} of {total} answers" if sizes else "no answers"
            verdicts.append(Verdict(UNVERIFIABLE, "no_majority", "self_consistency", extracted=answer, detail=detail))
            continue
        majority, members = winner
        agrees = index in members
        detail = f"{len(members)} of {total} samples answer {majority}"
        verdicts.append(
            Verdict(
                CORRECT if agrees else WRONG,
                "agrees_with_majority" if agrees else "disagrees_with_majority",
                "self_consistency",
                expected=majority,
                extracted=answer,
                detail=detail,
            )
        )
    return verdicts
