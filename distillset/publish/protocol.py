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
from distillset.publish.card import guess_languages, render_card, score_distribution
from distillset.publish.content_claims import content_held
from distillset.publish.exports import check_formats
from distillset.publish.files import PublishConflictError, data_files, write_checked
from distillset.publish.layout import CARD, CLAIM, LATEST, MANIFEST, STAGING_PREFIX, parse_version, version_name
from distillset.publish.licenses import version_licenses
from distillset.publish.locations import relative_source
from distillset.publish.manifest import build_manifest, manifest_bytes
from distillset.publish.rows import content_hash, provenance, validated_examples
from distillset.settings import LicensePolicy

MAX_CLAIM_ATTEMPTS = 100
_LANGUAGE_SAMPLE = 2000  # rows read to guess the card's language: enough to tell a script

__all__ = ["LicenseBlockedError", "PublishConflictError", "PublishResult", "publish_training_set"]


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
    examples: pl.DataFrame
    digest: str
    files: dict[str, bytes]
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
    examples: pl.DataFrame,
    *,
    manifest_fields: dict,
    formats: Sequence[str] = ("openai",),
    storage_options: dict | None = None,
    card_context: dict | None = None,
    license_policy: LicensePolicy | None = None,
    stale_after_s: float = claims.DEFAULT_STALE_AFTER_S,
) -> PublishResult:
    """Publish ``examples`` as the next version of training set ``name``, or nothing if unchanged.

    Args:
        storage_url: a folder or ``s3://bucket/prefix`` (``DISTILLSET_STORAGE_URL``).
        name: the training set's name (a folder under ``storage_url``).
        examples: rows with the ``training_examples`` columns of ``docs/engine.md``.
        manifest_fields: what the caller knows (counts, drops, checks, run id, config, sampling);
            see ``distillset.publish.manifest``.
        formats: export formats; ``openai`` (train/validation JSONL) is always written.
        storage_options: fsspec options for the store (never written anywhere).
        card_context: extra for the dataset card (``quality``, ``failed_rules``...); the quality
            distribution defaults to the published rows' ``quality_score``.
        license_policy: what blocks publication; the default policy when omitted.
        stale_after_s: when a dead publisher's claim may be removed (``DISTILLSET_PUBLISH_STALE_AFTER_S``).

    Returns:
        A ``PublishResult``; ``published=False`` with the existing version when the latest
        version already has this content.

    Raises:
        ValueError: bad rows or name. LicenseBlockedError: the license policy forbids it.
    """
    draft = _draft(name, examples, manifest_fields, formats, card_context, license_policy)
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


def _draft(name, examples, manifest_fields, formats, card_context, license_policy) -> _Draft:
    examples = validated_examples(name, examples)
    prompts_url = (manifest_fields or {}).get("prompts_url") or ((manifest_fields or {}).get("config") or {}).get(
        "prompts_url"
    )
    # A published row names its source file relative to the prompts location, never by a local path.
    sources = examples["source_file"].unique().to_list()
    shown = {s: relative_source(s, prompts_url) for s in sources}
    examples = examples.with_columns(pl.col("source_file").replace_strict(shown, return_dtype=pl.String))
    formats = check_formats(formats)
    teacher_models = sorted(set(examples["teacher_model"].to_list()))
    source_licenses = {
        str(row[0]): str(row[1] if row[1] is not None else "unknown")
        for row in examples.select("source_file", "license").unique().sort("source_file").iter_rows()
    }
    licenses, blocking = version_licenses(source_licenses, teacher_models, license_policy)
    if blocking:
        raise LicenseBlockedError("license policy blocks publishing " + name + ": " + " | ".join(blocking))
    context = dict(card_context or {})
    if "language" not in context:
        sample = examples["messages_json"].head(_LANGUAGE_SAMPLE).to_list()
        context["language"] = guess_languages(m.get("content") or "" for raw in sample for m in json.loads(raw))
    if "quality" not in context and "quality_scores" not in context:
        context["quality"] = score_distribution(examples["quality_score"].cast(pl.Float64, strict=False).to_list())
    return _Draft(
        name=name,
        examples=examples,
        digest=content_hash(examples, formats),
        files=data_files(examples, formats),
        teacher_models=teacher_models,
        provenance=provenance(examples),
        split_counts={s: int(examples.filter(pl.col("split") == s).height) for s in ("train", "validation")},
        formats=formats,
        licenses=licenses,
        manifest_fields=manifest_fields,
        card_context=context,
    )


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
        files = {
            file_name: write_checked(fs, storage.join(work_dir, file_name), data)
            for file_name, data in draft.files.items()
        }

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
        # Local files are named relative to the version folder: an absolute path means nothing elsewhere.
        file_urls = {f: f if local else storage.url_of(fs, storage.join(final_dir, f)) for f in draft.files}
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
