"""The layout of a published training set: ``<storage>/<name>/v<NNNN>/`` and the files in it."""

from __future__ import annotations

import re

MANIFEST = "manifest.json"
CARD = "README.md"
LATEST = "LATEST"
CLAIM = ".claim"
CLAIMS_DIR = ".claims"
STAGING_PREFIX = ".staging-"
DATA_PARQUET = "data.parquet"
DATA_INDEX = "data_index"
"""The manifest key saying ``data.parquet`` is sorted by ``example_id`` in row groups of known size
(versions published since streaming); readers of one id use the row groups' statistics."""
REQUIRED_FILES = ("train.jsonl", "validation.jsonl", DATA_PARQUET, CARD)


def split_parquet(split: str) -> str:
    """The Parquet file of one split (typed ``messages`` and lineage): ``train.parquet``..."""
    return f"{split}.parquet"


VERSION_DIR = re.compile(r"^v(\d{4,})$")


def version_name(number: int) -> str:
    return f"v{number:04d}"


def parse_version(version: str | int) -> int:
    """``"v0002"``, ``"0002"``, ``"2"`` or ``2`` -> 2.

    Raises:
        ValueError: if ``version`` is not a version number.
    """
    text = str(version).strip()
    match = re.fullmatch(r"v?(\d+)", text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{version!r} is not a version (expected v0001, v0002, ...)")
    return int(match.group(1))


def version_number(entry: str) -> int | None:
    """The number of a ``v<NNNN>`` folder name, or None for any other name."""
    match = VERSION_DIR.match(entry)
    return int(match.group(1)) if match else None
