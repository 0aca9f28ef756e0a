"""What changed between two versions of a training set: examples added and removed, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distillset.audit.catalog_reader import CatalogReader, drop_sentence, first_user_turn, rejects_for
from distillset.publish.reader import read_examples, resolve_version


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
    """Examples added and removed from ``old_version`` to ``new_version``, with removal reasons."""
    old_version = resolve_version(storage_url, name, old_version, storage_options)
    new_version = resolve_version(storage_url, name, new_version, storage_options)
    columns = ["example_id", "prompt_id", "teacher_model", "messages_json"]
    old = read_examples(storage_url, name, old_version, storage_options, columns=columns)
    new = read_examples(storage_url, name, new_version, storage_options, columns=columns)
    added = new.join(old.select("example_id"), on="example_id", how="anti").sort("example_id")
    removed = old.join(new.select("example_id"), on="example_id", how="anti").sort("example_id")
    replaced_by = {row["prompt_id"]: row["example_id"] for row in added.iter_rows(named=True)}
    result = VersionDiff(
        name=name, old_version=old_version, new_version=new_version, unchanged=new.height - added.height
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
