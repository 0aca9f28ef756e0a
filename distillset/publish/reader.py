"""Reading published versions back: listings, manifests, rows and an integrity check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from distillset import storage
from distillset.ids import canonical_json
from distillset.publish.claims import read_json, scan
from distillset.publish.layout import (
    DATA_PARQUET,
    MANIFEST,
    REQUIRED_FILES,
    parse_version,
    version_name,
    version_number,
)

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class VersionInfo:
    """One visible version, as its manifest describes it."""

    version: str
    created_at: str
    content_hash: str
    counts: dict
    path: str
    parent_version: str | None = None
    simulated: bool | str = False
    """``True`` (every row simulated), ``False`` (none) or ``"mixed"``, from the manifest."""
    simulated_rows: int | None = None
    real_rows: int | None = None
    """Row counts by origin; None for versions published before the manifest counted them."""
    same_content_as: str | None = None
    """An earlier version with the same content hash, when the manifest names one."""
    dagster_run_id: str | None = None
    """The Dagster run that published the version."""


def _set_dir(storage_url: str, name: str, storage_options: dict | None):
    fs, root = storage.filesystem(storage_url, storage_options)
    return fs, storage.join(root, name)


def list_versions(storage_url: str, name: str, storage_options: dict | None = None) -> list[VersionInfo]:
    """The visible versions of ``name``, oldest first (a folder without manifest is not a version)."""
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    visible = scan(fs, set_dir).visible
    return [
        VersionInfo(
            version=version_name(n),
            created_at=m.get("created_at", ""),
            content_hash=m.get("content_hash", ""),
            counts=m.get("counts", {}),
            path=storage.url_of(fs, storage.join(set_dir, version_name(n))),
            parent_version=m.get("parent_version"),
            simulated=_simulated_flag(m),
            simulated_rows=(m.get("teacher") or {}).get("simulated_rows"),
            real_rows=(m.get("teacher") or {}).get("real_rows"),
            same_content_as=m.get("same_content_as"),
            dagster_run_id=m.get("dagster_run_id"),
        )
        for n, m in sorted(visible.items())
    ]


def _simulated_flag(manifest: dict) -> bool | str:
    flag = (manifest.get("teacher") or {}).get("simulated")
    return "mixed" if flag == "mixed" else bool(flag)


def training_set_names(storage_url: str, storage_options: dict | None = None) -> list[str]:
    """Names of the training sets under ``storage_url`` (folders holding ``v<NNNN>`` folders)."""
    fs, root = storage.filesystem(storage_url, storage_options)
    storage.refresh(fs)
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        if entry.get("type") != "directory":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        try:
            children = fs.ls(entry["name"], detail=False)
        except FileNotFoundError:
            continue
        if any(version_number(c.rstrip("/").rsplit("/", 1)[-1]) is not None for c in children):
            names.append(name)
    return sorted(names)


def resolve_version(
    storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None
) -> str:
    """``"latest"`` -> the highest visible version; otherwise the normalized ``v<NNNN>``.

    Raises:
        FileNotFoundError: no visible version.
    """
    if str(version).lower() == "latest":
        versions = list_versions(storage_url, name, storage_options)
        if not versions:
            raise FileNotFoundError(f"training set {name!r} has no published version under {storage_url}")
        return versions[-1].version
    return version_name(parse_version(version))


def read_manifest(
    storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None
) -> dict:
    """The manifest of a visible version.

    Raises:
        FileNotFoundError: the version does not exist or is not visible.
    """
    version = resolve_version(storage_url, name, version, storage_options)
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    manifest = read_json(fs, storage.join(set_dir, version, MANIFEST))
    if manifest is None:
        raise FileNotFoundError(f"training set {name!r} has no visible version {version}")
    return manifest


def read_examples(
    storage_url: str,
    name: str,
    version: str | int = "latest",
    storage_options: dict | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """All rows of a version with their lineage columns (``data.parquet``), or only ``columns``.

    ``messages_json`` (the conversation as a JSON string) can be asked for from every version:
    versions since layout 2 store the typed ``messages`` column and it is derived from it.
    """
    import polars as pl  # here: the readers of one id (``distillset explain``) need no polars

    version = resolve_version(storage_url, name, version, storage_options)
    read_manifest(storage_url, name, version, storage_options)
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    with fs.open(storage.join(set_dir, version, DATA_PARQUET), "rb") as handle:
        available = pl.read_parquet_schema(handle)
        handle.seek(0)
        derive = columns is not None and "messages_json" in columns and "messages_json" not in available
        wanted = None if columns is None else [c if c != "messages_json" or not derive else "messages" for c in columns]
        frame = pl.read_parquet(handle, columns=wanted)
    if "messages" in frame.columns and (derive or (columns is None and "messages_json" not in frame.columns)):
        encoded = [canonical_json(m) for m in frame["messages"].to_list()]
        frame = frame.with_columns(pl.Series("messages_json", encoded, dtype=pl.String))
        if derive:
            frame = frame.select(columns)
    return frame


def verify_version(
    storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None
) -> list[str]:
    """Problems found when re-reading a version's files against its manifest (empty = intact)."""
    version = resolve_version(storage_url, name, version, storage_options)
    manifest = read_manifest(storage_url, name, version, storage_options)
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    problems = []
    for file_name, expected in sorted(manifest.get("files", {}).items()):
        path = storage.join(set_dir, version, file_name)
        try:
            actual, size = storage.sha256_of(fs, path)
        except FileNotFoundError:
            problems.append(f"{version}/{file_name}: missing")
            continue
        if actual != expected.get("sha256"):
            problems.append(
                f"{version}/{file_name}: sha256 {actual} does not match the manifest ({expected.get('sha256')})"
            )
        elif size != expected.get("size"):
            problems.append(f"{version}/{file_name}: size {size} does not match the manifest ({expected.get('size')})")
    for required in REQUIRED_FILES:
        if required not in manifest.get("files", {}):
            problems.append(f"{version}/{required}: not listed in the manifest")
    return problems
