"""One deterministic checker per IFEval instruction id, following the IFEval paper's definitions.

Zhou et al., "Instruction-Following Evaluation for Large Language Models" (arXiv:2311.07911)
define 25 verifiable instructions; ``CHECKERS`` maps each id to a function
``(response, **kwargs) -> bool`` with the arguments of the dataset's ``kwargs`` dicts. This is an
independent implementation of the semantics of google-research ``instruction_following_eval``
(not its code); where it differs, it is on purpose and listed here:

* ``length_constraints:number_sentences`` uses this module's sentence splitter: ``.``, ``?``,
  ``!`` (a run of them, an ellipsis included, counts once) and their CJK/Devanagari forms end a
  sentence, except a dot after a common abbreviation (``Dr.``, ``e.g.``), a single letter
  (``J. Smith``), an acronym (``U.S.A.``), inside a number (``3.14``), before a web domain
  (``example.com``) or with no space after it (``file.txt``). Close to, not identical with, the
  reference's regex splitter; newlines alone do not end a sentence, as there.
* ``change_case:capital_word_frequency`` counts all-capital ``\\w+`` tokens (the reference
  tokenizes with NLTK, which keeps ``U.S.`` as one token; here it is two).
* ``language:response_language``, ``change_case:english_capital`` and
  ``change_case:english_lowercase`` detect the language with ``distillset.verify.language``
  instead of ``langdetect``. As in the reference, a text whose language cannot be detected (no
  letters) passes the language part.
* ``keywords:existence``/``frequency``/``forbidden_words`` match the keyword literally (the
  reference passes it to ``re`` as a pattern, so a keyword with ``.`` or ``+`` matched more).

Relations are ``"less than"`` (strictly fewer) and ``"at least"``. An unknown relation or a
missing argument raises ``UnsupportedInstruction``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable

from distillset.verify.language import detect_language


class UnsupportedInstruction(ValueError):
    """An instruction id without a checker, or arguments its checker cannot use."""


def _compare(count: int, relation: str, target: int) -> bool:
    if relation == "less than":
        return count < int(target)
    if relation == "at least":
        return count >= int(target)
    raise UnsupportedInstruction(f"unknown relation {relation!r} (expected 'less than' or 'at least')")


def _word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


# --- sentences -------------------------------------------------------------------------------

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "prof", "capt", "cpt", "lt", "jr", "sr", "inc", "ltd", "co", "vs",
    "etc", "e.g", "i.e", "no", "fig", "approx", "dept", "est", "mt", "ph.d",
}  # fmt: skip
_SENTENCE_END = re.compile(r"[.?!。！？।]+")
_WEBSITE = re.compile(r"\.(?=(?:com|net|org|io|gov|edu|me)\b)")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (rules in the module docstring); empty pieces are dropped."""
    text = _WEBSITE.sub("<dot>", text.replace("\n", " "))
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        before = text[start : match.start()]
        last_word = before.rsplit(None, 1)[-1].lower().strip("(\"'") if before.strip() else ""
        following = text[end : end + 2]
        is_dot = match.group() == "."
        if (
            is_dot
            and (
                last_word in _ABBREVIATIONS
                or re.fullmatch(r"[a-z]", last_word)  # an initial: "J. Smith"
                or re.fullmatch(r"(?:[a-z]\.)+[a-z]", last_word)  # an acronym: "U.S.A."
                or (following[:1].isdigit() and before[-1:].isdigit())  # a decimal: "3.14"
            )
        ):
            continue
        if is_dot and following[:1] and not following[:1].isspace() and following[:1] not in "\"'”’)]":
            continue  # "file.txt", "a.b": no space after the dot
        sentences.append(text[start:end])
        start = end
    sentences.append(text[start:])
    return [s.replace("<dot>", ".").strip() for s in sentences if s.strip(" \"'”’)")]


# --- the checkers ------------------------------------------------------------------------------


def _keywords_existence(response: str, keywords: list[str]) -> bool:
    return all(re.search(re.escape(keyword), response, re.IGNORECASE) for keyword in keywords)


def _keywords_frequency(response: str, keyword: str, frequency: int, relation: str) -> bool:
    return _compare(len(re.findall(re.escape(keyword), response, re.IGNORECASE)), relation, frequency)


def _forbidden_words(response: str, forbidden_words: list[str]) -> bool:
    return not any(re.search(rf"\b{re.escape(word)}\b", response, re.IGNORECASE) for word in forbidden_words)


def _letter_frequency(response: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _compare(Counter(response.lower())[letter.lower()], let_relation, let_frequency)


def _response_language(response: str, language: str) -> bool:
    detected = detect_language(response)
    # langdetect names Chinese zh-cn/zh-tw; either counts as "zh".
    return detected is None or detected == language.lower().split("-")[0]


def _number_sentences(response: str, num_sentences: int, relation: str) -> bool:
    return _compare(len(split_sentences(response)), relation, num_sentences)


def _number_paragraphs(response: str, num_paragraphs: int) -> bool:
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    count = len(paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if index in (0, len(paragraphs) - 1):
                count -= 1  # a divider at the very start or end separates nothing
            else:
                return False  # two dividers in a row: an empty paragraph
    return count == int(num_paragraphs)


def _number_words(response: str, num_words: int, relation: str) -> bool:
    return _compare(_word_count(response), relation, num_words)


def _nth_paragraph_first_word(response: str, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = re.split(r"\n\n", response)
    count = sum(1 for paragraph in paragraphs if paragraph.strip())
    nth = int(nth_paragraph)
    if not 1 <= nth <= count:
        return False
    paragraph = paragraphs[nth - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].lstrip("'\"")
    head = re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()
    return count == int(num_paragraphs) and head == first_word.lower()


def _number_placeholders(response: str, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", response)) >= int(num_placeholders)


def _postscript(response: str, postscript_marker: str) -> bool:
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return bool(re.search(pattern, response.lower(), re.MULTILINE))


def _number_bullet_lists(response: str, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, re.MULTILINE)
    return len(stars) + len(dashes) == int(num_bullets)


_CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _constrained_response(response: str) -> bool:
    return any(option in response.strip() for option in _CONSTRAINED_OPTIONS)


def _number_highlighted_sections(response: str, num_highlights: int) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h[2:-2].strip()]
    return len(single) + len(double) >= int(num_highlights)


def _multiple_sections(response: str, section_spliter: str, num_sections: int) -> bool:
    parts = re.split(r"\s?" + re.escape(section_spliter) + r"\s?\d+\s?", response)
    return len(parts) - 1 >= int(num_sections)


def _json_format(response: str) -> bool:
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        if text.startswith(fence):
            text = text[len(fence) :]
            break
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _title(response: str) -> bool:
    return any(title.lstrip("<").rstrip(">").strip() for title in re.findall(r"<<[^\n]+>>", response))


def _two_responses(response: str) -> bool:
    parts = response.split("******")
    answers = []
    for index, part in enumerate(parts):
        if part.strip():
            answers.append(part)
        elif index not in (0, len(parts) - 1):
            return False
    return len(answers) == 2 and answers[0].strip() != answers[1].strip()


def _repeat_prompt(response: str, prompt_to_repeat: str) -> bool:
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _end_checker(response: str, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _capital_word_frequency(response: str, capital_frequency: int, capital_relation: str) -> bool:
    capitals = [word for word in re.findall(r"\w+", response) if word.isupper()]
    return _compare(len(capitals), capital_relation, capital_frequency)


def _english_capital(response: str) -> bool:
    return response.isupper() and _response_language(response, "en")


def _english_lowercase(response: str) -> bool:
    return response.islower() and _response_language(response, "en")


def _no_comma(response: str) -> bool:
    return "," not in response


def _quotation(response: str) -> bool:
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


CHECKERS: dict[str, Callable[..., bool]] = {
    "keywords:existence": _keywords_existence,
    "keywords:frequency": _keywords_frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "language:response_language": _response_language,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:number_words": _number_words,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_content:number_placeholders": _number_placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _number_highlighted_sections,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "startend:end_checker": _end_checker,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "punctuation:no_comma": _no_comma,
    "startend:quotation": _quotation,
}
"""Every instruction id of IFEval, mapped to its checker."""


def check_one(response: str, instruction_id: str, kwargs: dict | None = None) -> bool:
    """Whether ``response`` follows one instruction, taken literally (the strict test).

    Raises:
        UnsupportedInstruction: an unknown id, or arguments its checker does not take.
    """
    checker = CHECKERS.get(instruction_id)
    if checker is None:
        raise UnsupportedInstruction(f"no checker for instruction {instruction_id!r}")
    arguments = {key: value for key, value in (kwargs or {}).items() if value is not None}
    try:
        return bool(checker(response, **arguments))
    except TypeError as exc:
        raise UnsupportedInstruction(f"{instruction_id}: arguments {sorted(arguments)} do not fit ({exc})") from None
    except (KeyError, ValueError) as exc:
        if isinstance(exc, UnsupportedInstruction):
            raise
        raise UnsupportedInstruction(f"{instruction_id}: bad arguments ({exc})") from None
