"""What changed between two versions of a training set: examples added and removed, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distillset.audit.catalog_reader import CatalogReader, drop_sentence, first_user_turn, rejects_for
from distillset.publish.reader import read_examples, read_manifest, resolve_version

_UNSET = "(not recorded)"


@dataclass
class VersionDiff:
    """Examples added and removed between two versions of one training set."""

    name: str
    old_version: str
    new_version: str
    added: list[dict] = field(default_factory=list)
    """{"example_id", "prompt_id", "excerpt"}"""
    removed: list[dict] = field(default_factory=list)
    """{"example_id", "prompt_id", "excerpt", "reason"}"""
    unchanged: int = 0
    config_changes: list[dict] = field(default_factory=list)
    """{"key", "old", "new"}: what the manifests say changed in how the versions were made
    (teacher, sampling, prompts URL, thresholds, benchmarks...), dotted keys, sorted."""


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _made_with(manifest: dict) -> dict[str, object]:
    """What a manifest says about how its version was made, flattened to dotted keys."""
    teacher = manifest.get("teacher") or {}
    config = dict(manifest.get("config") or {})
    # The sampling, the model and the prompts are shown once, from the manifest's own fields.
    config.pop("sampling", None)
    prompts_url = manifest.get("prompts_url") or config.pop("prompts_url", None)
    config.pop("prompts_url", None)
    config["teacher"] = {k: v for k, v in (config.get("teacher") or {}).items() if k != "model"}
    made = {
        "teacher.model": teacher.get("model"),
        "teacher.endpoint_kind": teacher.get("endpoint_kind"),
        "teacher.simulated": teacher.get("simulated"),
        **_flatten(teacher.get("sampling") or {}, "sampling."),
        "prompts_url": prompts_url,
        "formats": manifest.get("formats"),
        "code.version": (manifest.get("code") or {}).get("version"),
        **_flatten(config, "config."),
    }
    return made


def config_changes(old: dict, new: dict) -> list[dict]:
    """The differences in how two versions were made, from their manifests (``VersionDiff.config_changes``).

    A version published before manifests kept their configuration only has a ``config_hash``:
    a changed hash is then all that can be said.
    """
    before, after = _made_with(old), _made_with(new)
    changes = [
        {"key": key, "old": before.get(key, _UNSET), "new": after.get(key, _UNSET)}
        for key in sorted(set(before) | set(after))
        if before.get(key, _UNSET) != after.get(key, _UNSET)
        and not (key.startswith("config.") and (not old.get("config") or not new.get("config")))
    ]
    if old.get("config_hash") != new.get("config_hash") and not (old.get("config") and new.get("config")):
        changes.append({"key": "config_hash", "old": old.get("config_hash"), "new": new.get("config_hash")})
    return changes


def _removal_reason(cat: CatalogReader, example: dict, replaced_by: dict[str, str]) -> str:
    prompt_id, teacher = example["prompt_id"], example["teacher_model"]
    if prompt_id in replaced_by:
        return f"replaced by example {replaced_by[prompt_id]} (same prompt, a new teacher answer)"
    reasons = []
    for drop in cat.rows("prompt_drops", prompt_id=prompt_id):
        reasons.append(drop_sentence("prompt", drop))
    for drop in cat.rows("generation_drops", prompt_id=prompt_id, teacher_model=teacher):
        reasons.append(drop_sentence("generation", drop))
    for score in cat.rows("quality_scores", prompt_id=prompt_id, teacher_model=teacher):
        if score.get("passed") is False:
            reasons.append(f"failed quality rules {', '.join(score.get('failed_rules') or []) or '(unnamed)'}")
    if reasons:
        return "; ".join(reasons)
    if cat.has_rows("raw_prompts") and not cat.rows("raw_prompts", prompt_id=prompt_id):
        rejects = rejects_for(cat, prompt_id)
        if rejects:
            return "; ".join(f"source row rejected: {r['reason']} ({r.get('detail') or ''})" for r in rejects)
        return "its source row is no longer read (the source file changed or was removed)"
    return "reason unknown: the catalog has no record of why it left"


def diff(
    storage_url: str,
    name: str,
    old_version: str,
    new_version: str,
    catalog_path: Path | str | None = None,
    storage_options: dict | None = None,
) -> VersionDiff:
    """Examples added and removed from ``old_version`` to ``new_version``, with removal reasons, and
    what changed in the configuration between them."""
    old_version = resolve_version(storage_url, name, old_version, storage_options)
    new_version = resolve_version(storage_url, name, new_version, storage_options)
    columns = ["example_id", "prompt_id", "teacher_model", "messages_json"]
    old = read_examples(storage_url, name, old_version, storage_options, columns=columns)
    new = read_examples(storage_url, name, new_version, storage_options, columns=columns)
    added = new.join(old.select("example_id"), on="example_id", how="anti").sort("example_id")
    removed = old.join(new.select("example_id"), on="example_id", how="anti").sort("example_id")
    replaced_by = {row["prompt_id"]: row["example_id"] for row in added.iter_rows(named=True)}
    result = VersionDiff(
        name=name,
        old_version=old_version,
        new_version=new_version,
        unchanged=new.height - added.height,
        config_changes=config_changes(
            read_manifest(storage_url, name, old_version, storage_options),
            read_manifest(storage_url, name, new_version, storage_options),
        ),
    )
    for row in added.iter_rows(named=True):
        result.added.append(
            {
                "example_id": row["example_id"],
                "prompt_id": row["prompt_id"],
                "excerpt": first_user_turn(row["messages_json"]),
            }
        )
    with CatalogReader(catalog_path) as cat:
        for row in removed.iter_rows(named=True):
            result.removed.append(
                {
                    "example_id": row["example_id"],
                    "prompt_id": row["prompt_id"],
                    "excerpt": first_user_turn(row["messages_json"]),
                    "reason": _removal_reason(cat, row, replaced_by),
                }
            )
    return result
