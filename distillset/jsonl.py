"""Reading JSON Lines files whose rows must each be a JSON object, with errors that name the line.

Strict on purpose, for the command-line tools and benchmark sets: one bad line is an error that
says where it is. (Prompt files are read leniently by ``prompt_files``: bad rows become rejects.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def iter_json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for every non-blank line of ``path`` (1-based lines).

    Raises:
        ValueError: a line is not valid JSON or not a JSON object; the message gives path and line.
    """
    with Path(path).open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_number}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_number}: a row must be a JSON object")
            yield line_number, record
