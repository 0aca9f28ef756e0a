"""Publish immutable, versioned training sets to a folder or ``s3://bucket/prefix``.

A version is ``<storage>/<name>/v<NNNN>/`` with ``train.jsonl``, ``validation.jsonl``,
``data.parquet``, optional ``sharegpt.jsonl`` / ``alpaca.jsonl``, ``README.md`` and
``manifest.json``. **A version is visible only when its ``manifest.json`` exists**, and the
manifest is written last, after every other file has been read back and checked, so a reader
never sees half a version.

How a publisher gets its number and commits (the same rules on both backends):

1. List visible versions. If the latest one has the same content hash, publish nothing.
2. Claim ``max(visible, live claims) + 1`` with an exclusive create (local:
   ``.claims/v<NNNN>`` opened with ``O_EXCL``; S3: ``v<NNNN>/.claim`` put with
   ``If-None-Match: *``). The loser of a race gets "exists" and tries the next number.
3. Write the files. Local: into a hidden ``.staging-<token>/`` folder, then one ``rename`` to
   ``v<NNNN>`` makes the complete version appear at once. S3 has no rename: the files go
   straight to ``v<NNNN>/`` (invisible without a manifest) and the manifest is put with
   ``If-None-Match: *`` too, so a visible manifest is never overwritten.
4. Update the ``LATEST`` pointer (``{"version", "content_hash"}``), a convenience only:
   listings trust manifests, not the pointer.

A publisher that fails removes what it wrote (never a visible version). One that died without
cleaning leaves a claim that the next publisher removes once it is stale: older than
``DISTILLSET_PUBLISH_STALE_AFTER_S`` (default 6 hours), or, on a local folder, owned by a
process of this host that no longer exists.

Limits: two publishers racing with the same content usually end with one version (each checks
again before committing) but may both publish; numbers can skip one a publisher released. A
publisher stalled longer than the stale delay loses its claim and, on S3, could write over the
data files of the publisher that took the number over; that one's manifest checksums then no
longer match and ``verify_version`` reports it. On S3 the ``.claim`` object stays in the version
folder (it is not listed in the manifest).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import fsspec
import polars as pl

from distillset import storage
from distillset.publish.card import quality_summary, render_card
from distillset.publish.exports import FORMATS, check_formats, export
from distillset.ids import canonical_json, sha256_hex
from distillset.publish.licenses import LicensePolicy, license_report
from distillset.publish.manifest import build_manifest, manifest_bytes

EXAMPLE_COLUMNS = (
    "example_id", "prompt_id", "teacher_model", "messages_json", "split", "source_file", "source_line",
    "source_sha256", "license", "request_hash", "generated_at", "quality_score", "cluster_id", "simulated",
)
MANIFEST = "manifest.json"
CARD = "README.md"
LATEST = "LATEST"
CLAIM = ".claim"
CLAIMS_DIR = ".claims"
STAGING_PREFIX = ".staging-"


def _stale_after_s() -> float:
    raw = os.environ.get("DISTILLSET_PUBLISH_STALE_AFTER_S", "")
    try:
        return float(raw) if raw else 6 * 3600.0
    except ValueError as exc:
        raise ValueError(f"DISTILLSET_PUBLISH_STALE_AFTER_S={raw!r} is not a number of seconds") from exc


# No heartbeat: a publisher slower than this would lose its claim, so keep it far above the
# longest upload (hours), since a dead publisher's number is only wasted until then.
STALE_CLAIM_AFTER_S = _stale_after_s()
MAX_CLAIM_ATTEMPTS = 100
_VERSION_DIR = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HOST = socket.gethostname()


class LicenseBlockedError(ValueError):
    """The license policy forbids publishing this set (the messages say why)."""


class PublishConflictError(RuntimeError):
    """Another publisher committed the version this one had claimed (a stale-claim takeover)."""


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


@dataclass(frozen=True)
class VersionInfo:
    """One visible version, as its manifest describes it."""

    version: str
    created_at: str
    content_hash: str
    counts: dict
    path: str
    parent_version: str | None = None
    simulated: bool = False


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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assign_split(example_ids: pl.Series, validation_fraction: float) -> pl.Series:
    """``"train"`` / ``"validation"`` for each id, from a hash of the id (stable across runs).

    An id keeps its split when other examples come and go, so validation never leaks into train
    between versions. When the hash puts no row in validation but there are at least 2 rows and
    ``validation_fraction > 0``, the row with the smallest hash goes there (still deterministic).
    """
    if not 0.0 <= validation_fraction <= 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    ids = example_ids.cast(pl.Utf8).to_list()
    positions = [int(hashlib.sha256(f"split:{i}".encode()).hexdigest()[:15], 16) / 16**15 for i in ids]
    splits = ["validation" if p < validation_fraction else "train" for p in positions]
    if validation_fraction > 0 and len(ids) >= 2 and "validation" not in splits:
        splits[min(range(len(ids)), key=lambda k: (positions[k], ids[k]))] = "validation"
    return pl.Series("split", splits, dtype=pl.Utf8)


def content_hash(examples: pl.DataFrame, formats: Sequence[str]) -> str:
    """sha256 over the sorted (example_id, messages_json, split) rows and the export formats."""
    digest = hashlib.sha256()
    rows = examples.select("example_id", "messages_json", "split").sort("example_id")
    for row in rows.iter_rows():
        digest.update(canonical_json(list(row)).encode("utf-8"))
        digest.update(b"\n")
    digest.update(canonical_json(sorted(formats)).encode("utf-8"))
    return digest.hexdigest()


def _validate(name: str, examples: pl.DataFrame) -> pl.DataFrame:
    if not _NAME.match(name or ""):
        raise ValueError(f"training set name {name!r} must be letters, digits, '.', '_' or '-' (max 128)")
    missing = [c for c in EXAMPLE_COLUMNS if c not in examples.columns]
    if missing:
        raise ValueError(f"training examples lack column(s) {missing} (see docs/engine.md, training_examples)")
    if examples.height == 0:
        raise ValueError("no training examples to publish")
    for column in ("example_id", "messages_json", "split", "teacher_model"):
        nulls = examples[column].null_count()
        if nulls:
            raise ValueError(f"{nulls} training example(s) have no {column}")
    duplicates = examples["example_id"].is_duplicated().sum()
    if duplicates:
        raise ValueError(f"{duplicates} rows share an example_id: example ids must be unique in a version")
    bad_splits = sorted(set(examples["split"].unique().to_list()) - {"train", "validation"})
    if bad_splits:
        raise ValueError(f"split must be 'train' or 'validation', found {bad_splits}")
    return examples.sort("example_id")


# ---------------------------------------------------------------------------------------------
# Reading what is there


def _read_json(fs: fsspec.AbstractFileSystem, path: str) -> dict | None:
    try:
        with fs.open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}


def _entries(fs: fsspec.AbstractFileSystem, set_dir: str) -> list[str]:
    try:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(set_dir, detail=False)]
    except FileNotFoundError:
        return []


def _scan(fs: fsspec.AbstractFileSystem, set_dir: str) -> tuple[dict[int, dict], dict[int, dict | None], list[str]]:
    """(visible number -> manifest, unfinished number -> claim or None, staging folder names)."""
    storage.refresh(fs)
    visible: dict[int, dict] = {}
    unfinished: dict[int, dict | None] = {}
    staging: list[str] = []
    for entry in _entries(fs, set_dir):
        match = _VERSION_DIR.match(entry)
        if match:
            number = int(match.group(1))
            manifest = _read_json(fs, storage.join(set_dir, entry, MANIFEST))
            if manifest is not None:
                visible[number] = manifest
            else:
                unfinished[number] = _read_json(fs, storage.join(set_dir, entry, CLAIM))
        elif entry.startswith(STAGING_PREFIX):
            staging.append(entry)
    if storage.is_local(fs):
        for entry in _entries(fs, storage.join(set_dir, CLAIMS_DIR)):
            match = _VERSION_DIR.match(entry)
            if match and int(match.group(1)) not in visible:
                unfinished[int(match.group(1))] = _read_json(fs, storage.join(set_dir, CLAIMS_DIR, entry))
    return visible, unfinished, staging


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(claim: dict | None, modified: dt.datetime | None, now: dt.datetime) -> bool:
    if claim and claim.get("host") == _HOST and isinstance(claim.get("pid"), int) and not _pid_alive(claim["pid"]):
        return True
    started = None
    if claim and claim.get("claimed_at"):
        try:
            started = dt.datetime.fromisoformat(claim["claimed_at"])
        except ValueError:
            started = None
    started = started or modified
    # Without any timestamp we cannot tell a slow publisher from a dead one: leave it alone.
    return started is not None and (now - started).total_seconds() >= STALE_CLAIM_AFTER_S


def _modified(fs: fsspec.AbstractFileSystem, path: str) -> dt.datetime | None:
    try:
        stamp = fs.modified(path)
    except (FileNotFoundError, NotImplementedError, OSError):
        return None
    # Backends disagree on naive timestamps: local ones are local time, remote ones are UTC.
    if stamp.tzinfo is None:
        stamp = stamp.astimezone() if storage.is_local(fs) else stamp.replace(tzinfo=dt.timezone.utc)
    return stamp


def _newest_modified(fs: fsspec.AbstractFileSystem, folder: str) -> dt.datetime | None:
    try:
        files = fs.find(folder)
    except FileNotFoundError:
        return None
    stamps = [s for f in files if (s := _modified(fs, f)) is not None]
    return max(stamps) if stamps else None


def _cleanup_stale(fs, set_dir: str, unfinished: dict[int, dict | None], staging: list[str], now: dt.datetime) -> list[str]:
    """Remove dead publishers' leftovers; never a visible version. Returns what was removed."""
    removed = []
    local = storage.is_local(fs)
    for entry in staging:
        folder = storage.join(set_dir, entry)
        owner = _read_json(fs, storage.join(folder, CLAIM))
        if _is_stale(owner, _newest_modified(fs, folder), now):
            fs.rm(folder, recursive=True)
            removed.append(entry)
    for number, claim in unfinished.items():
        name = version_name(number)
        folder = storage.join(set_dir, name)
        claim_path = storage.join(set_dir, CLAIMS_DIR, name) if local else storage.join(folder, CLAIM)
        modified = _newest_modified(fs, folder) if not local else _modified(fs, claim_path)
        if not _is_stale(claim, modified, now):
            continue
        if fs.exists(storage.join(folder, MANIFEST)):
            continue
        if not local and fs.exists(folder):
            fs.rm(folder, recursive=True)
        if fs.exists(claim_path):
            fs.rm(claim_path)
        removed.append(name)
    return removed


# ---------------------------------------------------------------------------------------------
# Writing


def _claim_bytes(token: str, now: dt.datetime) -> bytes:
    return json.dumps({"owner": token, "host": _HOST, "pid": os.getpid(), "claimed_at": now.isoformat()}).encode()


def _data_files(examples: pl.DataFrame, formats: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for split in ("train", "validation"):
        files[f"{split}.jsonl"] = export(examples.filter(pl.col("split") == split)["messages_json"].to_list(), "openai")
    for format_name in formats:
        file_name, _ = FORMATS[format_name]
        if file_name:
            files[file_name] = export(examples["messages_json"].to_list(), format_name)
    buffer = io.BytesIO()
    examples.write_parquet(buffer, compression="zstd", statistics=True)
    files["data.parquet"] = buffer.getvalue()
    return files


def _write_checked(fs, path: str, data: bytes, *, exclusive: bool = False) -> dict:
    """Write ``data`` then read it back from the store; the checksum entry of the file."""
    if exclusive:
        if not storage.create_exclusive(fs, path, data):
            raise PublishConflictError(f"{path} already exists: another publisher committed this version")
    elif storage.is_local(fs):
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    else:
        fs.pipe_file(path, data)
    expected = sha256_hex(data)
    actual, size = storage.sha256_of(fs, path)
    if actual != expected or size != len(data):
        raise OSError(f"{path} reads back differently from what was written (sha256 {actual} != {expected})")
    return {"sha256": expected, "size": size}


def _latest_unchanged(visible: dict[int, dict], below: int | None, digest: str) -> tuple[int, dict] | None:
    candidates = [n for n in visible if below is None or n < below]
    if not candidates:
        return None
    latest = max(candidates)
    return (latest, visible[latest]) if visible[latest].get("content_hash") == digest else None


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
        card_context: extra for the dataset card (``quality_scores``, ``failed_rules``...); the
            quality distribution defaults to the rows' ``quality_score``.
        license_policy: what blocks publication; ``LicensePolicy.from_env()`` when omitted.

    Returns:
        A ``PublishResult``; ``published=False`` with the existing version when the latest
        version already has this content.

    Raises:
        ValueError: bad rows or name. LicenseBlockedError: the license policy forbids it.
    """
    examples = _validate(name, examples)
    formats = check_formats(formats)
    digest = content_hash(examples, formats)
    teacher_models = sorted(set(examples["teacher_model"].to_list()))
    source_licenses = {
        str(row[0]): str(row[1] if row[1] is not None else "unknown")
        for row in examples.select("source_file", "license").unique().sort("source_file").iter_rows()
    }
    reports = [license_report(source_licenses, model, license_policy) for model in teacher_models]
    blocking = [message for report in reports for message in report.blocking]
    if blocking:
        raise LicenseBlockedError("license policy blocks publishing " + name + ": " + " | ".join(blocking))
    licenses = reports[0].to_dict()
    if len(reports) > 1:
        licenses["other_teachers"] = [r.to_dict()["teacher"] for r in reports[1:]]
        licenses["warnings"] = sorted({w for r in reports for w in r.warnings})
        licenses["attribution"] = sorted({a for r in reports for a in r.attribution})

    simulated = bool(examples["simulated"].fill_null(False).any())
    split_counts = {s: int(examples.filter(pl.col("split") == s).height) for s in ("train", "validation")}
    context = dict(card_context or {})
    if "quality" not in context and "quality_scores" not in context:
        context["quality"] = quality_summary(examples["quality_score"].cast(pl.Float64, strict=False).to_list())
    data_files = _data_files(examples, formats)

    fs, root = storage.filesystem(storage_url, storage_options)
    set_dir = storage.join(root, name)
    local = storage.is_local(fs)
    token = uuid.uuid4().hex

    for _ in range(MAX_CLAIM_ATTEMPTS):
        now = _now()
        visible, unfinished, staging = _scan(fs, set_dir)
        unchanged = _latest_unchanged(visible, None, digest)
        if unchanged:
            return _unchanged_result(fs, set_dir, unchanged)
        _cleanup_stale(fs, set_dir, unfinished, staging, now)
        visible, unfinished, _ = _scan(fs, set_dir)
        number = max([0, *visible, *unfinished]) + 1
        version = version_name(number)
        claim_path = storage.join(set_dir, CLAIMS_DIR, version) if local else storage.join(set_dir, version, CLAIM)
        if not storage.create_exclusive(fs, claim_path, _claim_bytes(token, now)):
            continue
        try:
            return _write_version(
                fs, set_dir, number, token, digest, data_files,
                name=name, examples=examples, teacher_models=teacher_models, simulated=simulated,
                split_counts=split_counts, formats=formats, licenses=licenses,
                manifest_fields=manifest_fields, card_context=context, claim_path=claim_path, created=now,
            )
        except _AbandonedAsUnchanged as unchanged_exc:
            return _unchanged_result(fs, set_dir, unchanged_exc.existing)
    raise RuntimeError(f"could not claim a version number for {name} after {MAX_CLAIM_ATTEMPTS} attempts")


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
    )


def _write_version(fs, set_dir, number, token, digest, data_files, *, name, examples, teacher_models, simulated,
                   split_counts, formats, licenses, manifest_fields, card_context, claim_path, created) -> PublishResult:
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
                handle.write(_claim_bytes(token, created))
        files = {file_name: _write_checked(fs, storage.join(work_dir, file_name), data) for file_name, data in data_files.items()}

        visible, _, _ = _scan(fs, set_dir)
        # A racer with the same content may have committed a lower number meanwhile: two
        # identical versions would only confuse readers.
        unchanged = _latest_unchanged(visible, number, digest)
        if unchanged:
            raise _AbandonedAsUnchanged(unchanged)
        lower = [n for n in visible if n < number]
        parent = version_name(max(lower)) if lower else None
        created_at = _now().isoformat(timespec="seconds").replace("+00:00", "Z")
        manifest = build_manifest(
            name=name, version=version, parent_version=parent, created_at=created_at, content_hash=digest,
            teacher_models=teacher_models, simulated=simulated, split_counts=split_counts, formats=formats,
            files=dict(files), licenses=licenses, manifest_fields=manifest_fields,
        )
        file_urls = {f: storage.url_of(fs, storage.join(final_dir, f)) for f in data_files}
        card = render_card(manifest, file_urls=file_urls, card_context=card_context, remote=not local).encode("utf-8")
        # The card is written before the manifest (not after) so a visible version is complete.
        files[CARD] = _write_checked(fs, storage.join(work_dir, CARD), card)
        manifest["files"] = files
        _write_checked(fs, storage.join(work_dir, MANIFEST), manifest_bytes(manifest), exclusive=not local)
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
    _update_latest(fs, set_dir, number, digest)
    return PublishResult(
        published=True, version=version, path=storage.url_of(fs, final_dir), content_hash=digest,
        parent_version=parent, files=files, reason="published" + (f" (parent {parent})" if parent else " (first version)"),
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
    current = _read_json(fs, pointer_path) or {}
    try:
        if current.get("version") and parse_version(current["version"]) > number:
            return
    except ValueError:
        pass
    payload = json.dumps({"version": version_name(number), "content_hash": digest}).encode()
    storage.write_bytes_atomic(fs, pointer_path, payload)


# ---------------------------------------------------------------------------------------------
# Reading versions back


def _set_dir(storage_url: str, name: str, storage_options: dict | None):
    fs, root = storage.filesystem(storage_url, storage_options)
    return fs, storage.join(root, name)


def list_versions(storage_url: str, name: str, storage_options: dict | None = None) -> list[VersionInfo]:
    """The visible versions of ``name``, oldest first (a folder without manifest is not a version)."""
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    visible, _, _ = _scan(fs, set_dir)
    return [
        VersionInfo(
            version=version_name(n),
            created_at=m.get("created_at", ""),
            content_hash=m.get("content_hash", ""),
            counts=m.get("counts", {}),
            path=storage.url_of(fs, storage.join(set_dir, version_name(n))),
            parent_version=m.get("parent_version"),
            simulated=bool((m.get("teacher") or {}).get("simulated")),
        )
        for n, m in sorted(visible.items())
    ]


def resolve_version(storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None) -> str:
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


def read_manifest(storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None) -> dict:
    """The manifest of a visible version.

    Raises:
        FileNotFoundError: the version does not exist or is not visible.
    """
    version = resolve_version(storage_url, name, version, storage_options)
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    manifest = _read_json(fs, storage.join(set_dir, version, MANIFEST))
    if manifest is None:
        raise FileNotFoundError(f"training set {name!r} has no visible version {version}")
    return manifest


def read_examples(
    storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """All rows of a version with their lineage columns (``data.parquet``), or only ``columns``."""
    version = resolve_version(storage_url, name, version, storage_options)
    read_manifest(storage_url, name, version, storage_options)
    fs, set_dir = _set_dir(storage_url, name, storage_options)
    with fs.open(storage.join(set_dir, version, "data.parquet"), "rb") as handle:
        return pl.read_parquet(handle, columns=columns)


def verify_version(storage_url: str, name: str, version: str | int = "latest", storage_options: dict | None = None) -> list[str]:
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
            problems.append(f"{version}/{file_name}: sha256 {actual} does not match the manifest ({expected.get('sha256')})")
        elif size != expected.get("size"):
            problems.append(f"{version}/{file_name}: size {size} does not match the manifest ({expected.get('size')})")
    for required in ("train.jsonl", "validation.jsonl", "data.parquet", CARD):
        if required not in manifest.get("files", {}):
            problems.append(f"{version}/{required}: not listed in the manifest")
    return problems
