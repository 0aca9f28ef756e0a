"""Publish immutable, versioned training sets to a folder or ``s3://bucket/prefix``.

A version is ``<storage>/<name>/v<NNNN>/`` with ``train.jsonl``, ``validation.jsonl``,
``train.parquet``, ``validation.parquet``, ``data.parquet``, optional ``sharegpt_<split>.jsonl`` /
``alpaca_<split>.jsonl``, ``README.md`` and ``manifest.json`` (``distillset.publish.layout``).
**A version is visible only when its ``manifest.json`` exists**, and the manifest is written
last, after every other file has been read back and checked, so a reader never sees half a version.

How a publisher gets its number and commits (the same rules on both backends):

1. List visible versions. If the latest one has the same content hash, publish nothing.
2. Claim ``max(visible, live claims) + 1`` with an exclusive create (``distillset.publish.claims``).
   The loser of a race gets "exists" and tries the next number.
3. Write the files. Local: into a hidden ``.staging-<token>/`` folder, then one ``rename`` to
   ``v<NNNN>`` makes the complete version appear at once. S3 has no rename: the files go
   straight to ``v<NNNN>/`` (invisible without a manifest) and the manifest is put with
   ``If-None-Match: *`` too, so a visible manifest is never overwritten.
4. Update the ``LATEST`` pointer (``{"version", "content_hash"}``), a convenience only:
   listings trust manifests, not the pointer.

A publisher that fails removes what it wrote (never a visible version); one that died without
cleaning leaves a claim that the next publisher removes once it is stale (``claims``).

Two publishers racing with the same content publish one version: each first claims its content
hash (``distillset.publish.content_claims``), so the second waits for the first and then finds its
content published. Limits: numbers can skip one a publisher released. A
publisher stalled longer than the stale delay loses its claim and, on S3, could write over the
data files of the publisher that took the number over; that one's manifest checksums then no
longer match and ``verify_version`` reports it. On S3 the ``.claim`` object stays in the version
folder (it is not listed in the manifest).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from distillset import storage
from distillset.publish import claims
from distillset.publish.card import render_card, sorted_score_distribution
from distillset.publish.content_claims import content_held
from distillset.publish.exports import check_formats
from distillset.publish.files import ROW_GROUP_ROWS, PublishConflictError, VersionWriter, write_checked
from distillset.publish.layout import (
    CARD,
    CLAIM,
    DATA_INDEX,
    DATA_PARQUET,
    LATEST,
    MANIFEST,
    STAGING_PREFIX,
    parse_version,
    version_name,
)
from distillset.publish.licenses import version_licenses
from distillset.publish.manifest import build_manifest, manifest_bytes
from distillset.publish.rows import ContentHasher, check_name
from distillset.publish.source import ExampleSource, as_source
from distillset.publish.summary import SourceChangedError, shown_chunks, summarize
from distillset.settings import LicensePolicy

MAX_CLAIM_ATTEMPTS = 100

__all__ = [
    "ExampleSource",
    "LicenseBlockedError",
    "PublishConflictError",
    "PublishResult",
    "SourceChangedError",
    "publish_training_set",
]


class LicenseBlockedError(ValueError):
    """The license policy forbids publishing this set (the messages say why)."""


@dataclass(frozen=True)
class PublishResult:
    """What ``publish_training_set`` did."""

    published: bool
    version: str
    path: str
    content_hash: str
    parent_version: str | None
    files: dict[str, dict] = field(default_factory=dict)
    reason: str = ""
    license_warnings: list[str] = field(default_factory=list)
    same_content_as: str | None = None
    """An earlier version (not the latest) whose content hash this new version repeats."""


@dataclass(frozen=True)
class _Draft:
    """Everything a version will hold, computed once before a number is claimed."""

    name: str
    source: ExampleSource
    prompts_url: str | None
    row_group_rows: int
    digest: str
    teacher_models: list[str]
    provenance: dict
    split_counts: dict[str, int]
    formats: list[str]
    licenses: dict
    manifest_fields: dict
    card_context: dict


def publish_training_set(
    storage_url: str,
    name: str,
    examples: pl.DataFrame | ExampleSource,
    *,
    manifest_fields: dict,
    formats: Sequence[str] = ("openai",),
    storage_options: dict | None = None,
    card_context: dict | None = None,
    license_policy: LicensePolicy | None = None,
    stale_after_s: float = claims.DEFAULT_STALE_AFTER_S,
    chunk_rows: int | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> PublishResult:
    """Publish ``examples`` as the next version of training set ``name``, or nothing if unchanged.

    Args:
        storage_url: a folder or ``s3://bucket/prefix`` (``DISTILLSET_STORAGE_URL``).
        name: the training set's name (a folder under ``storage_url``).
        examples: rows with the ``training_examples`` columns of ``docs/engine.md``: a polars
            frame, or an ``ExampleSource`` (``distillset.publish.source``) streamed in chunks, such
            as the catalog's partition (``CatalogSource``). The rows are read twice (check and
            hash, then write); memory holds one chunk and one row group per Parquet file.
        manifest_fields: what the caller knows (counts, drops, checks, run id, config, sampling);
            see ``distillset.publish.manifest``.
        formats: export formats; ``openai`` (train/validation JSONL) is always written.
        storage_options: fsspec options for the store (never written anywhere).
        card_context: extra for the dataset card (``quality``, ``failed_rules``...); the quality
            distribution defaults to the published rows' ``quality_score``.
        license_policy: what blocks publication; the default policy when omitted.
        stale_after_s: when a dead publisher's claim may be removed (``DISTILLSET_PUBLISH_STALE_AFTER_S``).
        chunk_rows: rows per chunk when ``examples`` is a frame (default ``source.CHUNK_ROWS``).
        row_group_rows: rows per Parquet row group (``files.ROW_GROUP_ROWS``).

    Returns:
        A ``PublishResult``; ``published=False`` with the existing version when the latest
        version already has this content.

    Raises:
        ValueError: bad rows or name. LicenseBlockedError: the license policy forbids it.
        SourceChangedError: the rows changed between the check and the write (nothing is published).
    """
    draft = _draft(
        name, as_source(examples, chunk_rows), manifest_fields, formats, card_context, license_policy, row_group_rows
    )
    fs, root = storage.filesystem(storage_url, storage_options)
    set_dir = storage.join(root, name)
    token = uuid.uuid4().hex
    # One publisher per content at a time: a second one with the same rows waits, then finds them
    # published and publishes nothing (distillset.publish.content_claims).
    with content_held(fs, set_dir, draft.digest, token, stale_after_s=stale_after_s):
        return _claim_and_write(fs, set_dir, token, draft, name, stale_after_s)


def _claim_and_write(fs, set_dir: str, token: str, draft: _Draft, name: str, stale_after_s: float) -> PublishResult:
    for _ in range(MAX_CLAIM_ATTEMPTS):
        now = _now()
        found = claims.scan(fs, set_dir)
        unchanged = _latest_unchanged(found.visible, None, draft.digest)
        if unchanged:
            return _unchanged_result(fs, set_dir, unchanged)
        claims.cleanup_stale(fs, set_dir, found, now, stale_after_s)
        found = claims.scan(fs, set_dir)
        number = max([0, *found.visible, *found.unfinished]) + 1
        claim_path = claims.claim_path(fs, set_dir, number)
        if not storage.create_exclusive(fs, claim_path, claims.claim_bytes(token, now)):
            continue
        try:
            return _write_version(fs, set_dir, number, token, draft, claim_path=claim_path, created=now)
        except _AbandonedAsUnchanged as unchanged_exc:
            return _unchanged_result(fs, set_dir, unchanged_exc.existing)
    raise RuntimeError(f"could not claim a version number for {name} after {MAX_CLAIM_ATTEMPTS} attempts")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _draft(name, source, manifest_fields, formats, card_context, license_policy, row_group_rows) -> _Draft:
    check_name(name)
    prompts_url = (manifest_fields or {}).get("prompts_url") or ((manifest_fields or {}).get("config") or {}).get(
        "prompts_url"
    )
    formats = check_formats(formats)
    # A published row names its source file relative to the prompts location, never by a local path.
    summary = summarize(shown_chunks(source, prompts_url), source.columns())
    licenses, blocking = version_licenses(summary.source_licenses, summary.teacher_models, license_policy)
    if blocking:
        raise LicenseBlockedError("license policy blocks publishing " + name + ": " + " | ".join(blocking))
    context = dict(card_context or {})
    if "language" not in context:
        context["language"] = summary.languages()
    if "quality" not in context and "quality_scores" not in context:
        context["quality"] = sorted_score_distribution(summary.scores)
    return _Draft(
        name=name,
        source=source,
        prompts_url=prompts_url,
        row_group_rows=row_group_rows,
        digest=summary.digest(formats),
        teacher_models=summary.teacher_models,
        provenance=summary.provenance,
        split_counts={s: summary.split_counts.get(s, 0) for s in ("train", "validation")},
        formats=formats,
        licenses=licenses,
        manifest_fields=manifest_fields,
        card_context=context,
    )


_UPLOAD_PART = 8 * 2**20
"""Bytes an S3 upload buffers before it sends a part (s3fs's default is 50 MB a file, and nine
files are open at once); S3 takes parts of 5 MB and more."""


def _open_for_writing(fs, path: str):
    return open(path, "wb") if storage.is_local(fs) else fs.open(path, "wb", block_size=_UPLOAD_PART)


def _write_data_files(fs, work_dir: str, draft: _Draft) -> dict[str, dict]:
    """The second pass: stream the rows into the version's data files, then read each file back.

    Raises:
        SourceChangedError: the rows hash differently from the first pass.
        OSError: a file reads back differently from what was written.
    """
    handles = {}

    def open_file(file_name: str):
        handles[file_name] = _open_for_writing(fs, storage.join(work_dir, file_name))
        return handles[file_name]

    hasher = ContentHasher()
    writer = None
    try:
        writer = VersionWriter(open_file, draft.formats, row_group_rows=draft.row_group_rows)
        for chunk in shown_chunks(draft.source, draft.prompts_url):
            hasher.update(chunk)
            writer.add(chunk)
        files = writer.close()
        for handle in handles.values():
            if storage.is_local(fs):
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    finally:
        for handle in handles.values():
            if not handle.closed:
                handle.close()
    if hasher.hexdigest(draft.formats) != draft.digest:
        raise SourceChangedError(f"the rows of {draft.name} changed while it was being published: nothing published")
    for file_name, expected in files.items():
        path = storage.join(work_dir, file_name)
        actual, size = storage.sha256_of(fs, path)
        if actual != expected["sha256"] or size != expected["size"]:
            raise OSError(f"{path} reads back differently from what was written (sha256 {actual} != {expected})")
    return files


def _latest_unchanged(visible: dict[int, dict], below: int | None, digest: str) -> tuple[int, dict] | None:
    candidates = [n for n in visible if below is None or n < below]
    if not candidates:
        return None
    latest = max(candidates)
    return (latest, visible[latest]) if visible[latest].get("content_hash") == digest else None


class _AbandonedAsUnchanged(Exception):
    def __init__(self, existing: tuple[int, dict]):
        super().__init__("unchanged")
        self.existing = existing


def _unchanged_result(fs, set_dir: str, existing: tuple[int, dict]) -> PublishResult:
    number, manifest = existing
    version = version_name(number)
    return PublishResult(
        published=False,
        version=version,
        path=storage.url_of(fs, storage.join(set_dir, version)),
        content_hash=manifest["content_hash"],
        parent_version=manifest.get("parent_version"),
        files=manifest.get("files", {}),
        reason=f"unchanged: the latest version {version} has the same content hash",
        license_warnings=list((manifest.get("licenses") or {}).get("warnings") or []),
    )


def _write_version(
    fs, set_dir: str, number: int, token: str, draft: _Draft, *, claim_path: str, created: dt.datetime
) -> PublishResult:
    local = storage.is_local(fs)
    version = version_name(number)
    final_dir = storage.join(set_dir, version)
    work_dir = storage.join(set_dir, STAGING_PREFIX + token) if local else final_dir
    committed = False
    try:
        if local:
            os.makedirs(work_dir)
            # The staging folder names its owner so a cleaner can tell a live publisher from a dead one.
            with open(storage.join(work_dir, CLAIM), "wb") as handle:
                handle.write(claims.claim_bytes(token, created))
        files = _write_data_files(fs, work_dir, draft)

        visible = claims.scan(fs, set_dir).visible
        # A racer with the same content may have committed a lower number meanwhile: two
        # identical versions would only confuse readers.
        unchanged = _latest_unchanged(visible, number, draft.digest)
        if unchanged:
            raise _AbandonedAsUnchanged(unchanged)
        lower = [n for n in visible if n < number]
        parent = version_name(max(lower)) if lower else None
        # Going back to an earlier configuration can bring back an earlier version's content: say so.
        same = [n for n in lower if visible[n].get("content_hash") == draft.digest]
        same_content_as = version_name(min(same)) if same else None
        created_at = _now().isoformat(timespec="seconds").replace("+00:00", "Z")
        manifest = build_manifest(
            name=draft.name,
            version=version,
            parent_version=parent,
            created_at=created_at,
            content_hash=draft.digest,
            teacher_models=draft.teacher_models,
            provenance=draft.provenance,
            split_counts=draft.split_counts,
            formats=draft.formats,
            files=dict(files),
            licenses=draft.licenses,
            manifest_fields=draft.manifest_fields,
            same_content_as=same_content_as,
        )
        # Rows are sorted by example_id in row groups of known size: a reader of one id reads the
        # row group whose statistics hold it (distillset.audit.explain); older versions lack this.
        manifest[DATA_INDEX] = {"file": DATA_PARQUET, "sorted_by": "example_id", "row_group_rows": draft.row_group_rows}
        # Local files are named relative to the version folder: an absolute path means nothing elsewhere.
        file_urls = {f: f if local else storage.url_of(fs, storage.join(final_dir, f)) for f in files}
        card = render_card(manifest, file_urls=file_urls, card_context=draft.card_context, remote=not local).encode(
            "utf-8"
        )
        # The card is written before the manifest (not after) so a visible version is complete.
        files[CARD] = write_checked(fs, storage.join(work_dir, CARD), card)
        manifest["files"] = files
        write_checked(fs, storage.join(work_dir, MANIFEST), manifest_bytes(manifest), exclusive=not local)
        if local:
            os.remove(storage.join(work_dir, CLAIM))
            if os.path.exists(final_dir):
                raise PublishConflictError(f"{final_dir} appeared while publishing: another publisher took {version}")
            os.rename(work_dir, final_dir)
        committed = True
    except BaseException as exc:
        if not committed and not isinstance(exc, PublishConflictError):
            _abandon(fs, work_dir, claim_path, local)
        elif isinstance(exc, PublishConflictError) and local:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise

    if local:
        try:
            os.remove(claim_path)
        except FileNotFoundError:
            pass
    _update_latest(fs, set_dir, number, draft.digest)
    return PublishResult(
        published=True,
        version=version,
        path=storage.url_of(fs, final_dir),
        content_hash=draft.digest,
        parent_version=parent,
        files=files,
        reason="published"
        + (f" (parent {parent})" if parent else " (first version)")
        + (f"; same content as {same_content_as}" if same_content_as else ""),
        license_warnings=list(draft.licenses.get("warnings") or []),
        same_content_as=same_content_as,
    )


def _abandon(fs, work_dir: str, claim_path: str, local: bool) -> None:
    """Remove an unfinished version's files and claim, so the number can be taken again."""
    try:
        storage.refresh(fs)
        if local:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not fs.exists(storage.join(work_dir, MANIFEST)):
            for path in fs.find(work_dir):
                if not path.endswith("/" + CLAIM):
                    fs.rm(path)
        if fs.exists(claim_path):
            fs.rm(claim_path)
    except Exception:  # noqa: BLE001 - cleanup must not hide the original error; the next publisher retries it
        pass


def _update_latest(fs, set_dir: str, number: int, digest: str) -> None:
    pointer_path = storage.join(set_dir, LATEST)
    current = claims.read_json(fs, pointer_path) or {}
    try:
        if current.get("version") and parse_version(current["version"]) > number:
            return
    except ValueError:
        pass
    payload = json.dumps({"version": version_name(number), "content_hash": digest}).encode()
    storage.write_bytes_atomic(fs, pointer_path, payload)
