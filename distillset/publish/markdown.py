"""Text from files, made inert in the dataset card (Markdown rendered to HTML on a hub).

A source file name, a ``.license`` sidecar or a model id is data, not markup: ``<img onerror=...>``
or a backtick in it must reach the reader as the characters they are. ``text`` escapes for
running Markdown (tables included); ``fenced`` wraps a block in a fence it cannot close.
"""

from __future__ import annotations

import json
import re

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Characters that can start Markdown syntax in the middle of a line (emphasis, code, links,
# images, tables, strikethrough, escapes). With ``<`` an entity no HTML tag can open, so quotes
# stay as they are; ``.``, ``-``, ``:`` and ``/`` only mean something at a line start, which a
# collapsed value inside a line never is.
_PUNCTUATION = set("\\`*_[]()#!|~{}")
_SPACE = re.compile(r"\s+")


def text(value: object) -> str:
    """``value`` as inert Markdown inside a line: ``& < >`` as entities, Markdown punctuation
    backslash-escaped (CommonMark allows it before any ASCII punctuation), whitespace collapsed
    so a value cannot end a table row or start a block."""
    out = []
    for char in _SPACE.sub(" ", str(value)).strip():
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def fenced(body: str, info: str = "") -> list[str]:
    """A fenced code block of ``body``: its content is never markup, and the fence is longer than
    any run of backticks inside it, so the body cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body.splitlines(), fence]


def yaml_scalar(value: object) -> str:
    """A YAML scalar for the card's front matter (JSON strings and numbers are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)
