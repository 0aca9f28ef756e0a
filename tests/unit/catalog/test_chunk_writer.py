"""The chunked write's inserts: every part in order, and the connection's settings left as found."""

from __future__ import annotations

import polars as pl

from distillset import catalog


def test_parts_go_in_in_order_and_the_thread_setting_is_restored(tmp_path):
    path = tmp_path / "catalog.duckdb"
    frames = [pl.DataFrame({"n": list(range(start, start + 1000)), "text": ["x" * 50] * 1000}) for start in (0, 1000)]
    with catalog.write_chunks(path) as writer:
        before = writer.con.execute("SELECT current_setting('threads')").fetchone()[0]
        writer.replace_table("t", dict(frames[0].schema))
        for frame in frames:
            writer.append("t", frame)
        writer.append("t", frames[0].head(0))  # an empty chunk adds no part
        writer._flush()
        # The inserts ran on one thread; the statements after them see the setting they had.
        assert writer.con.execute("SELECT current_setting('threads')").fetchone()[0] == before
    rows = catalog.read_table(path, "t")
    assert rows["n"].to_list() == list(range(2000))
    assert rows["text"].to_list() == ["x" * 50] * 2000
