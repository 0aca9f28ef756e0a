"""The ``manifest.json`` of a training set version: everything needed to audit and reproduce it.

The engine does not know who runs it: the caller passes what only it knows (counts per stage,
drops per reason, check results, the Dagster run id, the config) in ``manifest_fields``, and the
manifest stores it beside what the engine computes itself (content hash, files and checksums,
teacher and endpoint kind read from the rows, code version, licenses).

Recognised ``manifest_fields`` keys: ``teacher_model``, ``sampling`` (dict), ``config`` (dict,
hashed into ``config_hash`` and kept, with its ``prompts_url`` shown by ``public_location``, so
``distillset diff`` can say what changed) or ``config_hash``, ``prompts_url``, ``counts`` (stage ->
rows), ``drops`` (reason -> rows, or stage -> reason -> rows; alias ``drops_by_reason``),
``checks`` (check results), ``dagster_run_id``, ``description``, ``teacher_batches`` (how many
teacher calls came through provider batches and their cost, shown as ``teacher.batches``).
``simulated`` is ignored: whether a version is simulated is counted from its rows
(``distillset.publish.rows.provenance``), never taken from a setting. Anything else is kept under
``extra``. Keys that name secrets are dropped and values equal to a secret from the environment are
masked, so a caller's mistake cannot publish a credential. No absolute local path is written
(``distillset.publish.locations``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import subprocess
from typing import Any

from distillset.ids import canonical_json, sha256_hex
from distillset.publish.locations import public_location
from distillset.publish.rows import endpoint_kind
from distillset.settings import secret_values
from distillset.settings.paths import PROJECT_ROOT

MANIFEST_FORMAT_VERSION = 1
# ``drops_by_reason`` is an alias of ``drops``; ``simulated`` can only add the simulated mark;
# ``licenses`` is recomputed by the publisher from the rows themselves, so a caller's copy is ignored.
_KNOWN_FIELDS = {
    "teacher_model",
    "teacher_batches",
    "sampling",
    "config",
    "config_hash",
    "counts",
    "drops",
    "drops_by_reason",
    "checks",
    "dagster_run_id",
    "description",
    "simulated",
    "licenses",
    "prompts_url",
}
_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|secret|secret[_-]access[_-]key|password|passwd|credentials?|authorization|session[_-]token|access[_-]key([_-]id)?)($|[_-])",
    re.IGNORECASE,
)
MASK = "***"


def scrub_secrets(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with secret-named keys removed and known secret values masked (recursively)."""
    secrets = secret_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {k: scrub_secrets(v, secrets) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    return value


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, str | None]:
    """The distillset package version and, when the checkout is a git repository, its commit."""
    try:
        version = importlib.metadata.version("distillset")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit = None
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", result.stdout.strip()):
            commit = result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        # No git on the machine (a container, a wheel install): the package version still says a lot.
        pass
    return {"package": "distillset", "version": version, "git_commit": commit}


def config_hash(manifest_fields: dict) -> str | None:
    """The given ``config_hash``, or a hash of the canonical JSON of ``config`` (secrets removed)."""
    if manifest_fields.get("config_hash"):
        return str(manifest_fields["config_hash"])
    if manifest_fields.get("config") is not None:
        return sha256_hex(canonical_json(scrub_secrets(manifest_fields["config"], secrets=[])))
    return None


def public_config(config: dict | None) -> dict | None:
    """``config`` as the manifest shows it: secrets removed, ``prompts_url`` without a local path."""
    if config is None:
        return None
    shown = scrub_secrets(dict(config), secrets=[])
    if shown.get("prompts_url"):
        shown["prompts_url"] = public_location(str(shown["prompts_url"]))
    return shown


def build_manifest(
    *,
    name: str,
    version: str,
    parent_version: str | None,
    created_at: str,
    content_hash: str,
    teacher_models: list[str],
    provenance: dict,
    split_counts: dict[str, int],
    formats: list[str],
    files: dict[str, dict],
    licenses: dict,
    manifest_fields: dict,
    same_content_as: str | None = None,
) -> dict:
    """The manifest as a JSON-ready dict (see the module docstring for ``manifest_fields``).

    ``provenance`` is ``distillset.publish.rows.provenance`` of the rows: the ``teacher`` section's
    ``simulated`` (true, false or ``"mixed"``), row counts per origin and per served model.
    ``same_content_as`` names an earlier (not the latest) version with this content hash.
    """
    fields = scrub_secrets(dict(manifest_fields or {}))
    teacher_model = fields.get("teacher_model") or (teacher_models[0] if len(teacher_models) == 1 else None)
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "name": name,
        "version": version,
        "parent_version": parent_version,
        "created_at": created_at,
        "content_hash": content_hash,
        "description": fields.get("description"),
        "teacher": {
            "model": teacher_model,
            "models": teacher_models,
            "endpoint_kind": endpoint_kind(provenance["simulated"]),
            **provenance,
            "sampling": fields.get("sampling"),
            "batches": fields.get("teacher_batches"),
        },
        "code": code_version(),
        "config_hash": config_hash(fields),
        "config": public_config(fields.get("config")),
        "prompts_url": public_location(fields.get("prompts_url") or (fields.get("config") or {}).get("prompts_url")),
        "same_content_as": same_content_as,
        "counts": {
            "examples": sum(split_counts.values()),
            "splits": split_counts,
            "stages": fields.get("counts") or {},
            "drops": fields.get("drops") or fields.get("drops_by_reason") or {},
        },
        "checks": fields.get("checks"),
        "licenses": licenses,
        "formats": formats,
        "files": files,
        "dagster_run_id": fields.get("dagster_run_id"),
        "extra": {k: v for k, v in fields.items() if k not in _KNOWN_FIELDS},
    }


def manifest_bytes(manifest: dict) -> bytes:
    """Stable, readable JSON (sorted keys, indented) so two equal manifests are equal bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")
