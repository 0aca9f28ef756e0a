"""Instruction following (IFEval): per-instruction results, strict and loose, and the four scores.

**Strict** (the IFEval paper's "strict" accuracy): an instruction is followed when the response
is not blank and its checker (``ifeval_checks.CHECKERS``) accepts the response as it is.

**Loose** forgives the formatting a model adds around a correct answer: an instruction is followed
when its checker accepts any non-blank one of eight variants, every combination of
{response, first line removed, last line removed, both removed} x {as is, every ``*`` removed},
as the paper defines it (lines split on ``\\n``, each variant stripped).

**Scores** (``ifeval_scores``): ``prompt_strict``/``prompt_loose`` are the share of prompts whose
every instruction is followed; ``instruction_strict``/``instruction_loose`` the share of all
instructions, over all prompts, that are followed.

**Verdict** (``verify_ifeval``): ``correct`` when every instruction is followed strictly, else
``wrong``/``instruction_not_followed`` naming the failed ids; an id or argument without a checker
is ``unverifiable``/``unsupported_instruction``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distillset.verify.ifeval_checks import CHECKERS, UnsupportedInstruction, check_one
from distillset.verify.task import VerifiableTask
from distillset.verify.verdict import CORRECT, UNVERIFIABLE, WRONG, Verdict

__all__ = [
    "CHECKERS",
    "UnsupportedInstruction",
    "check_instructions",
    "ifeval_scores",
    "loose_variants",
    "verify_ifeval",
]


def loose_variants(response: str) -> list[str]:
    """The eight variants the loose test tries (the response itself first)."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    bases = [response, without_first, without_last, without_both]
    return bases + [base.replace("*", "") for base in bases]


def _kwargs_list(instruction_ids: Sequence[str], kwargs: Sequence[Mapping[str, Any] | None] | None) -> list:
    if not kwargs:
        return [{} for _ in instruction_ids]
    if len(kwargs) != len(instruction_ids):
        raise ValueError(f"{len(instruction_ids)} instruction ids but {len(kwargs)} kwargs dicts")
    return [dict(k or {}) for k in kwargs]


def check_instructions(
    response: str,
    instruction_id_list: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None] | None = None,
    loose: bool = False,
) -> list[bool]:
    """Which of a prompt's instructions the response follows, in order.

    Args:
        response: the model's response.
        instruction_id_list: IFEval ids, e.g. ``["punctuation:no_comma", "length_constraints:number_words"]``.
        kwargs: one dict of arguments per id (``None`` values are ignored); None means no arguments.
        loose: apply the loose test instead of the strict one.

    Returns:
        One bool per instruction id.

    Raises:
        UnsupportedInstruction: an id without a checker, or arguments its checker cannot take.
        ValueError: ``kwargs`` does not have one entry per id.
    """
    arguments = _kwargs_list(instruction_id_list, kwargs)
    candidates = [v for v in (loose_variants(response) if loose else [response]) if v.strip()]
    unknown = [i for i in instruction_id_list if i not in CHECKERS]
    if unknown:
        raise UnsupportedInstruction(f"no checker for instruction {unknown[0]!r}")
    return [
        any(check_one(candidate, instruction_id, instruction_kwargs) for candidate in candidates)
        for instruction_id, instruction_kwargs in zip(instruction_id_list, arguments, strict=True)
    ]


def ifeval_scores(
    responses: Sequence[str],
    instruction_id_lists: Sequence[Sequence[str]],
    kwargs_lists: Sequence[Sequence[Mapping[str, Any] | None] | None],
) -> dict[str, float]:
    """The IFEval paper's four accuracies over a set of prompts (one response per prompt).

    Args:
        responses: one response per prompt.
        instruction_id_lists: each prompt's ``instruction_id_list``.
        kwargs_lists: each prompt's ``kwargs`` list.

    Returns:
        ``{"prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"}``, each in
        [0, 1]; all 0.0 for no prompts.

    Raises:
        ValueError: the three sequences differ in length.
        UnsupportedInstruction: as ``check_instructions``.
    """
    if not len(responses) == len(instruction_id_lists) == len(kwargs_lists):
        raise ValueError("responses, instruction_id_lists and kwargs_lists must have one entry per prompt")
    prompts = {"strict": 0, "loose": 0}
    followed = {"strict": 0, "loose": 0}
    total = 0
    for response, ids, kwargs in zip(responses, instruction_id_lists, kwargs_lists, strict=True):
        total += len(ids)
        for mode in ("strict", "loose"):
            results = check_instructions(response, ids, kwargs, loose=mode == "loose")
            prompts[mode] += all(results)
            followed[mode] += sum(results)
    count = len(responses)
    return {
        "prompt_strict": prompts["strict"] / count if count else 0.0,
        "prompt_loose": prompts["loose"] / count if count else 0.0,
        "instruction_strict": followed["strict"] / total if total else 0.0,
        "instruction_loose": followed["loose"] / total if total else 0.0,
    }


def verify_ifeval(answer: str, task: VerifiableTask) -> Verdict:
    """Verdict for an ``ifeval`` task: ``correct`` when every instruction is followed strictly.

    ``expected`` lists the instruction ids, ``extracted`` those followed; ``detail`` names the failed ones.
    """
    if task.kind != "ifeval":
        raise ValueError(f"verify_ifeval needs an ifeval task, not {task.kind!r}")
    ids = list(task.instruction_ids)
    try:
        results = check_instructions(answer, ids, list(task.instruction_kwargs) or None)
    except UnsupportedInstruction as exc:
        return Verdict(UNVERIFIABLE, "unsupported_instruction", "ifeval", expected=", ".join(ids), detail=str(exc))
    followed = [i for i, ok in zip(ids, results, strict=True) if ok]
    failed = [i for i, ok in zip(ids, results, strict=True) if not ok]
    expected, extracted = ", ".join(ids), ", ".join(followed)
    if not failed:
        return Verdict(CORRECT, "correct", "ifeval", expected=expected, extracted=extracted,
                       detail=f"all {len(ids)} instructions followed")  # fmt: skip
    detail = f"not followed: {', '.join(failed)} ({len(followed)} of {len(ids)} followed)"
    return Verdict(WRONG, "instruction_not_followed", "ifeval", expected=expected, extracted=extracted, detail=detail)
