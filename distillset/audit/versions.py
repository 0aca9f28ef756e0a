"""``distillset versions``' data: the visible versions of one training set, as rows."""

from __future__ import annotations

from dataclasses import dataclass

from distillset.publish.reader import list_versions


@dataclass(frozen=True)
class VersionRow:
    """One line of ``distillset versions``."""

    version: str
    created_at: str
    train: int
    validation: int
    content_hash: str
    simulated: bool
    parent_version: str | None
    path: str


def versions(storage_url: str, name: str, storage_options: dict | None = None) -> list[VersionRow]:
    """The visible versions of training set ``name``, oldest first."""
    rows = []
    for info in list_versions(storage_url, name, storage_options):
        splits = info.counts.get("splits", {})
        rows.append(
            VersionRow(
                version=info.version,
                created_at=info.created_at,
                train=int(splits.get("train", 0)),
                validation=int(splits.get("validation", 0)),
                content_hash=info.content_hash,
                simulated=info.simulated,
                parent_version=info.parent_version,
                path=info.path,
            )
        )
    return rows
