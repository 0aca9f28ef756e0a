"""What the simulator answers: a pure function of (model, messages, sampling parameters).

Word problems get a worked answer (right with ``KNOWN_ANSWER_ACCURACY``, or the accuracy the
simulator is given, when it was handed the reference; by luck otherwise), other prompts a topical
paragraph, a few requests a refusal, and a judge request (``distillset.quality.judge``'s protocol) a JSON rating.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping

from distillset import ids
from distillset.quality.judge import JUDGE_ANSWER_HEADING, JUDGE_RUBRIC_MARKER
from distillset.simulator.faults import unit

REFUSAL_EN = "I'm sorry, but I can't help with that."
REFUSAL_ZH = "抱歉，我无法帮助处理这个请求。"
REFUSAL_RATE = 0.02
# With an answer key (reference answers it is handed, like a teacher that knows the subject), a
# word problem is answered right this often; without one, only by luck. It lets the demo flow pass
# its accuracy gate while still leaving wrong answers for the `wrong_answer` rule to find.
KNOWN_ANSWER_ACCURACY = 0.85
# The judge mode (distillset.quality.judge's protocol): answers shorter than this (characters) are
# rated low by the simulated judge.
JUDGE_SHORT_ANSWER_CHARS = 40
# Share of simulated judgments wrapped in a code fence with a sentence around it, as real models
# often do, so parsers meet that shape in every flow run.
JUDGE_FENCED_RATE = 0.2

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# A token is a CJK character, a word or one punctuation mark; leading whitespace belongs to it so
# that joining a prefix of tokens reproduces a prefix of the text.
_TOKEN = re.compile(r"\s*(?:[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+|[^\w\s]|_)", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_MATH_CUES = re.compile(
    r"\b(how many|how much|total|each|per|sum|cost|costs|left|remaining|percent|times|average|dollars?|\$)",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    "about above after again also because been before being below between both could does doing down during "
    "each from further have having here into itself just more most once only other over same should some such "
    "than that their them then there these they this those through under until very what when where which while "
    "with would your write please explain describe give make using tell".split()
)


def tokenize(text: str) -> list[str]:
    """The simulator's tokenizer: CJK characters, words and punctuation marks (whitespace kept)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _keywords(text: str, rng: random.Random, limit: int = 4) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered not in _STOPWORDS and lowered not in seen:
            seen.append(lowered)
    if len(seen) > limit:
        seen = rng.sample(seen, limit)
    return seen or ["this topic"]


def looks_like_math(text: str) -> bool:
    """A word problem: at least two numbers and a quantity cue ("how many", "each", "$"...)."""
    return len(_NUMBER.findall(text)) >= 2 and bool(_MATH_CUES.search(text))


def _format_number(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _math_answer(question: str, rng: random.Random) -> str:
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(question)][:4]
    a, b = numbers[0], numbers[1]
    steps = [f"First, we note the quantities given in the problem: {', '.join(_format_number(n) for n in numbers)}."]
    # A naive parser's guess: it cannot know the truth, so some answers are right and some are not.
    operation = rng.choice(["add", "multiply", "subtract", "add_all"])
    if operation == "add":
        result = a + b
        steps.append(f"Adding {_format_number(a)} and {_format_number(b)} gives {_format_number(result)}.")
    elif operation == "multiply":
        result = a * b
        steps.append(f"Multiplying {_format_number(a)} by {_format_number(b)} gives {_format_number(result)}.")
    elif operation == "subtract":
        result = abs(a - b)
        steps.append(f"The difference between {_format_number(a)} and {_format_number(b)} is {_format_number(result)}.")
    else:
        result = sum(numbers)
        steps.append(f"Adding all the quantities together gives {_format_number(result)}.")
    steps.append("So that is the answer to the question.")
    return " ".join(steps) + f"\n#### {_format_number(result)}"


ANSWER_FORMATS = ("gsm8k", "boxed", "bold")
"""How real teachers end a worked answer: ``#### 72``, ``The final answer is: $\\boxed{72}$``, ``**Answer: 1,234**``."""


def _final_line(value: str, answer_format: str) -> str:
    if answer_format == "boxed":
        return f"The final answer is: $\\boxed{{{value}}}$"
    if answer_format == "bold":
        return f"**Answer: {_thousands(value)}**"
    return f"#### {value}"


def _thousands(value: str) -> str:
    """``1234`` -> ``1,234`` (as many teachers write it); anything not a plain integer unchanged."""
    return f"{int(value):,}" if re.fullmatch(r"-?\d+", value) else value


def _known_math_answer(question: str, reference: str, answer_format: str = "gsm8k") -> str:
    return (
        f"Let's work through it step by step. {_givens(question)} "
        f"Putting the quantities together in the order the problem describes, the result is {reference}.\n"
        f"{_final_line(reference, answer_format)}"
    )


def _givens(question: str) -> str:
    numbers = [_format_number(float(n.replace(",", ""))) for n in _NUMBER.findall(question)][:4]
    return f"The problem gives {', '.join(numbers)}." if numbers else "We restate what the problem gives."


def _wrong_value(reference: str, draw: float) -> str:
    """A final answer that is not ``reference``: off by a small amount, or the reference with a digit added."""
    try:
        number = float(reference.replace(",", ""))
    except ValueError:
        return reference + "1"
    offset = 1 + int(draw * 9)
    return _format_number(number + offset if draw < 0.5 else max(number - offset, number + offset + 1))


def _wrong_known_math_answer(question: str, reference: str, answer_format: str, draw: float) -> str:
    """A wrong worked answer that mentions the right number mid-way (so only the final answer may be read)."""
    wrong = _wrong_value(reference, draw)
    return (
        f"Let's work through it step by step. {_givens(question)} "
        f"A first pass suggests {reference}, but one quantity has to be counted again, "
        f"which changes the total to {wrong}.\n"
        f"{_final_line(wrong, answer_format)}"
    )


def compose_reasoning(request_key: str, messages: list[dict]) -> str:
    """A short simulated reasoning trace (what reasoning models send apart from the answer)."""
    last_user = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    numbers = _NUMBER.findall(last_user)[:4]
    words = _keywords(last_user, random.Random(f"reasoning:{request_key}"))
    if numbers:
        return (
            f"The user asks a word problem with the quantities {', '.join(numbers)}. I should combine them carefully."
        )
    return f"The user asks about {' and '.join(words[:2])}. I should give a clear, structured answer."


def _math_answer_zh(question: str, rng: random.Random) -> str:
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(question)][:4]
    result = numbers[0] + numbers[1] if rng.random() < 0.5 else numbers[0] * numbers[1]
    return (
        f"首先，题目给出的数量是 {'、'.join(_format_number(n) for n in numbers)}。\n"
        f"计算得到 {_format_number(result)}。\n#### {_format_number(result)}"
    )


def _prose_answer(question: str, rng: random.Random) -> str:
    words = _keywords(question, rng)
    topic = " and ".join(words[:2])
    paragraphs = [
        f"Here is an overview of {topic}. "
        f"The key idea is that {words[0]} depends on the context in which it is used, "
        f"and a careful answer considers {words[-1]} as well.",
        f"When thinking about {words[0]}, it helps to start from concrete examples. "
        f"Each example shows a different side of {topic}, and comparing them makes the trade-offs clear.",
    ]
    shape = rng.random()
    if shape < 0.3:
        paragraphs.append(
            "Main points to keep in mind:\n"
            + "\n".join(f"- {w.capitalize()}: why it matters and how it fits." for w in words)
        )
    elif shape < 0.45:
        name = re.sub(r"\W", "_", words[0]) or "example"
        paragraphs.append(
            f"A short example in Python:\n\n```python\ndef {name}(items):\n    return "
            f"sorted(items)\n\nprint({name}([3, 1, 2]))\n```"
        )
    paragraphs.append(f"In summary, {topic} rewards a step-by-step approach and attention to detail.")
    return "\n\n".join(paragraphs)


def _prose_answer_zh(question: str, rng: random.Random) -> str:
    excerpt = "".join(_CJK.findall(question))[:8] or "这个问题"
    paragraphs = [
        f"关于“{excerpt}”，我们可以从几个方面来理解。",
        "首先，需要明确问题的背景和目标；其次，要结合具体的例子进行分析。",
    ]
    if rng.random() < 0.3:
        paragraphs.append("要点：\n- 明确目标\n- 分析条件\n- 得出结论")
    paragraphs.append("总之，循序渐进地思考，才能得到可靠的答案。")
    return "\n\n".join(paragraphs)


def is_judge_request(messages: list[dict]) -> bool:
    """A request for a judgment: a system message carries ``JUDGE_RUBRIC_MARKER``."""
    return any(m.get("role") == "system" and JUDGE_RUBRIC_MARKER in content_text(m.get("content")) for m in messages)


def compose_judgment(request_key: str, messages: list[dict]) -> str:
    """The simulated judge's answer: a JSON object ``{"score": 1-10, "rationale": "..."}``.

    The score is drawn from the request hash (5 to 10 for an ordinary answer) and is low for a
    refusal (1 or 2) or a very short answer (2 or 3), so the judgment sometimes disagrees with the
    heuristic score. A deterministic share is wrapped in a code fence with prose around it.
    """
    last_user = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    answer = last_user.rsplit(JUDGE_ANSWER_HEADING, 1)[-1].strip()
    draw = unit(f"judge:{request_key}")
    if answer in (REFUSAL_EN, REFUSAL_ZH) or answer.lower().startswith(("i'm sorry", "i cannot", "i can't")):
        score, rationale = 1 + int(draw * 2), "The answer refuses the request instead of helping."
    elif len(answer) < JUDGE_SHORT_ANSWER_CHARS:
        score, rationale = 2 + int(draw * 2), "The answer is too short to be helpful or show its reasoning."
    else:
        score = 5 + int(draw * 6)
        rationale = (
            "A clear, complete answer that follows the instruction."
            if score >= 8
            else "A reasonable answer, but it is generic and could be more specific."
        )
    judgment = json.dumps({"score": score, "rationale": rationale})
    if unit(f"judge-fence:{request_key}") < JUDGE_FENCED_RATE:
        return f"Here is my evaluation:\n```json\n{judgment}\n```\nI hope this helps."
    return judgment


def compose_answer(
    request_key: str,
    messages: list[dict],
    answer_key: Mapping[str, str] | None = None,
    accuracy: float = KNOWN_ANSWER_ACCURACY,
) -> str:
    """The simulator's full (untruncated) answer to a conversation, a pure function of its key.

    ``answer_key`` maps a question (normalized with ``ids.normalize_text``) to its reference
    answer; a word problem found there is answered right with probability ``accuracy`` (drawn
    from the request key, so every sample of a prompt draws anew) and otherwise wrong, with the
    right number mentioned mid-way; the final line takes one of ``ANSWER_FORMATS``. A judge
    request (see ``is_judge_request``) gets ``compose_judgment`` instead.
    """
    if is_judge_request(messages):
        return compose_judgment(request_key, messages)
    rng = random.Random(request_key)
    last_user = next((content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    chinese = bool(_CJK.search(last_user))
    refused = unit(f"refusal:{request_key}") < REFUSAL_RATE
    # A question the simulator was handed the reference of is answered as a word problem even
    # when it does not look like one ("half as many" has one number): it knows the subject.
    reference = (answer_key or {}).get(ids.normalize_text(last_user))
    if reference and not chinese:
        # ``accuracy`` is the share answered right, exactly: refusals come out of the wrong share,
        # so a release configured at 0.9 measures 0.9 (the scorecard tests rely on it).
        answer_format = ANSWER_FORMATS[int(unit(f"format:{request_key}") * len(ANSWER_FORMATS))]
        if unit(f"accuracy:{request_key}") < accuracy:
            return _known_math_answer(last_user, reference, answer_format)
        if refused:
            return REFUSAL_EN
        return _wrong_known_math_answer(last_user, reference, answer_format, unit(f"wrong:{request_key}"))
    if refused:
        return REFUSAL_ZH if chinese else REFUSAL_EN
    if looks_like_math(last_user):
        return _math_answer_zh(last_user, rng) if chinese else _math_answer(last_user, rng)
    return _prose_answer_zh(last_user, rng) if chinese else _prose_answer(last_user, rng)
