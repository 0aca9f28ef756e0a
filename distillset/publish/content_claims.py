"""One publisher per content: two publishers with identical rows publish one version.

Version-number claims (``distillset.publish.claims``) keep two publishers from taking one number,
but two publishers of the *same* content would each take a number and both commit (each checks
the latest version before the other has committed). So a publisher first claims its content hash,
``<set>/.claims/content-<hash>``, with the same exclusive create (local ``O_EXCL``, S3
``If-None-Match: *``). A second publisher of that content waits while the claim is live; when the
holder is done (claim removed), it claims in turn and finds the latest version has its content:
it publishes nothing. Publishers of different content never wait for each other.

A holder that died leaves its claim: it is taken over when its process is gone (same host) or it
is older than ``min(stale_after_s, MAX_WAIT_S)``; a waiter never waits longer than that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

from distillset import storage
from distillset.publish.claims import claim_bytes, is_stale, read_json
from distillset.publish.layout import CLAIMS_DIR

# Publishing a set takes seconds to minutes; a content claim older than this is a dead publisher's.
MAX_WAIT_S = 1800.0
POLL_S = 0.2


def content_claim_path(set_dir: str, digest: str) -> str:
    """Where the claim on publishing ``digest`` in the set folder ``set_dir`` lives."""
    return storage.join(set_dir, CLAIMS_DIR, f"content-{digest}")


@contextlib.contextmanager
def content_held(fs, set_dir: str, digest: str, token: str, *, stale_after_s: float) -> Iterator[None]:
    """Hold the claim on publishing ``digest`` for the ``with`` block, waiting for a live holder.

    The claim is removed on exit (only if it is still this publisher's).
    """
    path = content_claim_path(set_dir, digest)
    stale_s = min(stale_after_s, MAX_WAIT_S)
    while True:
        now = dt.datetime.now(dt.UTC)
        if storage.create_exclusive(fs, path, claim_bytes(token, now)):
            break
        storage.refresh(fs)
        holder = read_json(fs, path)
        if holder is None:  # released between our create and our read: try again at once
            continue
        if is_stale(holder, _claimed_at(holder), now, stale_s):
            with contextlib.suppress(FileNotFoundError):
                fs.rm(path)
            continue
        time.sleep(POLL_S)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # cleanup must not hide the publisher's own error
            storage.refresh(fs)
            if (read_json(fs, path) or {}).get("owner") == token:
                fs.rm(path)


def _claimed_at(claim: dict) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(claim["claimed_at"])
    except (KeyError, TypeError, ValueError):
        return None
