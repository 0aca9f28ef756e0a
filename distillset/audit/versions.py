"""``distillset versions``' data: the visible versions of one training set (or of all), as rows."""

from __future__ import annotations

from dataclasses import dataclass

from distillset.publish.reader import list_versions, training_set_names


@dataclass(frozen=True)
class VersionRow:
    """One line of ``distillset versions``."""

    version: str
    created_at: str
    train: int
    validation: int
    content_hash: str
    simulated: bool | str
    """``True``, ``False`` or ``"mixed"`` (some rows simulated), counted from the rows at publish time."""
    parent_version: str | None
    path: str
    name: str = ""
    simulated_rows: int | None = None
    real_rows: int | None = None
    same_content_as: str | None = None


def versions(storage_url: str, name: str | None = None, storage_options: dict | None = None) -> list[VersionRow]:
    """The visible versions of training set ``name`` (of every set under ``storage_url`` when None),
    by set name, oldest first."""
    names = [name] if name else training_set_names(storage_url, storage_options)
    rows = []
    for set_name in names:
        for info in list_versions(storage_url, set_name, storage_options):
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
                    name=set_name,
                    simulated_rows=info.simulated_rows,
                    real_rows=info.real_rows,
                    same_content_as=info.same_content_as,
                )
            )
    return rows


def simulated_label(row: VersionRow) -> str:
    """``SIMULATED``, ``MIXED (3/15 simulated)`` or ``no``: what the versions table shows."""
    if row.simulated == "mixed":
        total = (row.simulated_rows or 0) + (row.real_rows or 0)
        return f"MIXED ({row.simulated_rows}/{total} simulated)"
    return "SIMULATED" if row.simulated else "no"
