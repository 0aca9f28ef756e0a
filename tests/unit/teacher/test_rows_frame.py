"""``rows_frame`` builds exactly the frame polars builds from the same rows (columns, dtypes, values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from distillset.teacher.rows import GENERATIONS_SCHEMA, rows_frame

_HASHES = list(GENERATIONS_SCHEMA).index("request_hashes")
_AT = list(GENERATIONS_SCHEMA).index("generated_at")


def _row(i: int) -> tuple:
    values = []
    for name, dtype in GENERATIONS_SCHEMA.items():
        if name == "request_hashes":
            values.append([f"{i * 7 + turn:064x}" for turn in range(1 + i % 3)])
        elif name == "generated_at":
            # Several offsets: the column is UTC whatever zone the answer's time was in.
            zone = timezone(timedelta(hours=i % 5 - 2))
            values.append(None if i % 7 == 0 else datetime(2026, 12, 3, 1, 2, 3, i * 37 % 999_999, tzinfo=zone))
        elif dtype == pl.String:
            values.append(None if i % 5 == 0 else f"value {i} — é 数")
        elif dtype == pl.Int64:
            values.append(i * 11)
        elif dtype == pl.Float64:
            values.append(i / 3)
        elif dtype == pl.Boolean:
            values.append(i % 2 == 0)
        else:
            raise AssertionError(f"no test value for {name} ({dtype})")
    return tuple(values)


def _with(row: tuple, index: int, value) -> tuple:
    return row[:index] + (value,) + row[index + 1 :]


def _reference(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=GENERATIONS_SCHEMA, orient="row")


def _assert_same(rows: list[tuple]) -> None:
    built, expected = rows_frame(rows), _reference(rows)
    assert built.schema == expected.schema
    assert built.equals(expected)
    assert built.to_dicts() == expected.to_dicts()


def test_the_frame_equals_the_row_oriented_one():
    _assert_same([_row(i) for i in range(300)])


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (_HASHES, []),  # a conversation that could not be sent: no hash
        (_HASHES, ["a\x1fb"]),  # the separator inside a hash: polars' own path
        (_AT, datetime(2026, 1, 1, 12)),  # a naive time: polars' own path
        (_AT, datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),  # before the epoch
    ],
)
def test_unusual_values_give_the_same_frame(index, value):
    rows = [_row(i) for i in range(20)]
    rows[3] = _with(rows[3], index, value)
    _assert_same(rows)


def test_no_rows_give_the_empty_frame_with_the_schema():
    assert rows_frame([]).schema == _reference([]).schema
    assert rows_frame([]).height == 0


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError):
        rows_frame([_row(1)[:-1]])
