"""How many of a version's teacher calls came through provider batches, and what they cost."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from distillset.settings import TeacherSettings
from distillset.teacher.ledger import Ledger

_CHUNK = 900


def batch_share(ledger: Ledger, hashes: Iterable[str], settings: TeacherSettings, *, distinct: bool = False) -> dict:
    """``calls`` (distinct request keys), ``answers`` of them a batch answered, their estimated ``cost_usd``.

    An answer counts as a batch answer when a batch line answered its key at its origin; the cost
    is the online price times ``TEACHER_BATCH_PRICE_FACTOR`` (the manifest and the card show both).
    ``distinct``: the caller's hashes are already distinct (a SQL ``DISTINCT``), so they stream
    through in chunks instead of being deduplicated in memory.
    """
    wanted = (h for h in hashes if h) if distinct else iter(list(dict.fromkeys(h for h in hashes if h)))
    answers = prompt_tokens = completion_tokens = calls = 0
    if not ledger.query("SELECT EXISTS (SELECT 1 FROM batch_lines WHERE state = 'answered')")[0][0]:
        # No batch ever answered a key of this ledger: every count but the calls is 0, without
        # one lookup per 900 keys (~100 queries for 100k examples).
        wanted, calls = iter(()), sum(1 for _ in wanted)
    while chunk := list(itertools.islice(wanted, _CHUNK)):
        calls += len(chunk)
        row = ledger.query(
            "SELECT COUNT(*), COALESCE(SUM(a.prompt_tokens), 0), COALESCE(SUM(a.completion_tokens), 0) FROM answers a "
            f"WHERE a.request_hash IN ({', '.join('?' * len(chunk))}) AND EXISTS (SELECT 1 FROM batch_lines l "
            "WHERE l.request_hash = a.request_hash AND l.origin = a.origin AND l.state = 'answered')",
            chunk,
        )[0]
        # int(): PostgreSQL's SUM of a BIGINT is a NUMERIC, which arrives as a Decimal.
        answers += int(row[0])
        prompt_tokens += int(row[1])
        completion_tokens += int(row[2])
    online = (prompt_tokens * settings.price_input_per_mtok + completion_tokens * settings.price_output_per_mtok) / 1e6
    return {
        "calls": calls,
        "answers": answers,
        "cost_usd": round(online * settings.batch_price_factor, 6),
        "price_factor": settings.batch_price_factor,
    }
