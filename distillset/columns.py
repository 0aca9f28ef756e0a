"""What every catalog column means, read from ``docs/engine.md``'s column tables (the one source).

The UI shows these as column descriptions (``dagster/column_schema``); the reference doc is where a
person reads them too, so they are written once, there. A table section is a ``### `name` ``
heading followed by a ``| column | type | meaning |`` table; a cell naming several columns
(``prompt_tokens, completion_tokens``) describes each of them.
"""

from __future__ import annotations

import functools
import re

from distillset.settings.paths import DOCS_DIR

_HEADING = re.compile(r"^###\s+`([a-z_]+)`")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@functools.cache
def _tables() -> dict[str, dict[str, str]]:
    path = DOCS_DIR / "engine.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:  # an install without the docs: the UI shows no descriptions, nothing else changes
        return {}
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = tables.setdefault(heading.group(1), {})
            continue
        if line.startswith("## "):
            current = None
            continue
        if current is None or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("column", "") or set(cells[0]) <= {"-"}:
            continue
        meaning = cells[-1].strip()
        for name in (n.strip().strip("`") for n in cells[0].split(",")):
            if _NAME.match(name) and meaning:
                current[name] = meaning
    return tables


def column_descriptions(table: str | None = None) -> dict[str, str]:
    """Column name -> meaning: the table's own entries first, then any other table's for the same name.

    Args:
        table: the catalog table (``teacher_generations``...); None for every table's columns.
    """
    tables = _tables()
    merged: dict[str, str] = {}
    for name, columns in tables.items():
        if name != table:
            for column, meaning in columns.items():
                merged.setdefault(column, meaning)
    merged.update(tables.get(table or "", {}))
    return merged
