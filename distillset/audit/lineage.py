"""Answers to "where does this example come from?" and "what changed between two versions?".

The answers join the DuckDB catalog (the tables of ``docs/engine.md``, opened read-only) with the
published versions in storage. Functions here return plain data; ``distillset versions``,
``diff`` and ``explain`` only format it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from distillset import catalog, ids, storage
from distillset.publish.protocol import _VERSION_DIR, list_versions, read_examples, resolve_version

EXCERPT_CHARS = 80


def first_user_turn(messages_json: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The first user message of a conversation, cut to ``limit`` characters on one line."""
    try:
        messages = json.loads(messages_json or "[]")
    except ValueError:
        return "(unreadable messages)"
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == "user":
            text = " ".join(str(message.get("content", "")).split())
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Catalog:
    """Read-only queries on the catalog over one connection; a missing file or table reads as empty.

    Filters run in DuckDB so explaining one id does not load whole tables into memory.
    """

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self._stack = contextlib.ExitStack()
        self._con = None
        self._columns: dict[str, set[str]] = {}

    def __enter__(self) -> "_Catalog":
        if self.path is not None and self.path.exists():
            self._con = self._stack.enter_context(catalog.connect(self.path, read_only=True))
            for table, column in self._con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall():
                self._columns.setdefault(table, set()).add(column)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()
        self._con = None

    def has_rows(self, name: str) -> bool:
        if self._con is None or name not in self._columns:
            return False
        return self._con.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() is not None

    def rows(self, name: str, **equal: Any) -> list[dict]:
        if self._con is None or name not in self._columns or not set(equal) <= self._columns[name]:
            return []
        where = " AND ".join(f'"{column}" = ?' for column in equal)
        query = f'SELECT * FROM "{name}"' + (f" WHERE {where}" if where else "")
        return [_plain(row) for row in self._con.execute(query, list(equal.values())).pl().to_dicts()]


# ---------------------------------------------------------------------------------------------
# versions


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
                version=info.version, created_at=info.created_at, train=int(splits.get("train", 0)),
                validation=int(splits.get("validation", 0)), content_hash=info.content_hash,
                simulated=info.simulated, parent_version=info.parent_version, path=info.path,
            )
        )
    return rows


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
        if any(_VERSION_DIR.match(c.rstrip("/").rsplit("/", 1)[-1]) for c in children):
            names.append(name)
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# diff


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


def _removal_reason(cat: _Catalog, example: dict, replaced_by: dict[str, str]) -> str:
    prompt_id, teacher = example["prompt_id"], example["teacher_model"]
    if prompt_id in replaced_by:
        return f"replaced by example {replaced_by[prompt_id]} (same prompt, a new teacher answer)"
    reasons = []
    for drop in cat.rows("prompt_drops", prompt_id=prompt_id):
        reasons.append(_prompt_drop_sentence(drop))
    for drop in cat.rows("generation_drops", prompt_id=prompt_id, teacher_model=teacher):
        reasons.append(_generation_drop_sentence(drop))
    for score in cat.rows("quality_scores", prompt_id=prompt_id, teacher_model=teacher):
        if score.get("passed") is False:
            reasons.append(f"failed quality rules {', '.join(score.get('failed_rules') or []) or '(unnamed)'}")
    if reasons:
        return "; ".join(reasons)
    if cat.has_rows("raw_prompts") and not cat.rows("raw_prompts", prompt_id=prompt_id):
        rejects = _rejects_for(cat, prompt_id)
        if rejects:
            return "; ".join(f"source row rejected: {r['reason']} ({r.get('detail') or ''})" for r in rejects)
        return "its source row is no longer read (the source file changed or was removed)"
    return "reason unknown: the catalog has no record of why it left"


def _prompt_drop_sentence(drop: dict) -> str:
    sentence = f"prompt dropped as {drop.get('reason')}"
    if drop.get("duplicate_of"):
        sentence += f" of {drop['duplicate_of']}"
    if drop.get("similarity") is not None:
        sentence += f" (similarity {drop['similarity']:.2f})"
    if drop.get("detail"):
        sentence += f": {drop['detail']}"
    return sentence


def _generation_drop_sentence(drop: dict) -> str:
    sentence = f"generation dropped as {drop.get('reason')}"
    if drop.get("duplicate_of"):
        sentence += f" of {drop['duplicate_of']}"
    if drop.get("similarity") is not None:
        sentence += f" (similarity {drop['similarity']:.2f})"
    if drop.get("detail"):
        sentence += f": {drop['detail']}"
    return sentence


def _rejects_for(cat: _Catalog, prompt_id: str) -> list[dict]:
    # Rejected rows have no prompt_id column: recompute it from the row's file hash and line.
    return [
        row
        for row in cat.rows("rejects")
        if row.get("source_sha256") and row.get("source_line") is not None
        and ids.prompt_id(row["source_sha256"], int(row["source_line"])) == prompt_id
    ]


def diff(
    storage_url: str, name: str, old_version: str, new_version: str, catalog_path: Path | str | None = None,
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
    result = VersionDiff(name=name, old_version=old_version, new_version=new_version, unchanged=new.height - added.height)
    for row in added.iter_rows(named=True):
        result.added.append({"example_id": row["example_id"], "prompt_id": row["prompt_id"], "excerpt": first_user_turn(row["messages_json"])})
    with _Catalog(catalog_path) as cat:
        for row in removed.iter_rows(named=True):
            result.removed.append({
                "example_id": row["example_id"], "prompt_id": row["prompt_id"],
                "excerpt": first_user_turn(row["messages_json"]), "reason": _removal_reason(cat, row, replaced_by),
            })
    return result


# ---------------------------------------------------------------------------------------------
# explain


@dataclass
class Explanation:
    """The lineage of one example or prompt, and its fate.

    ``status`` is ``kept`` (in the training examples or a published version), ``dropped``
    (a recorded reason says why), or ``unknown`` (no table knows this id).
    """

    query: str
    kind: str
    """``example``, ``prompt`` or ``unknown``"""
    status: str
    prompt_id: str | None = None
    example_ids: list[str] = field(default_factory=list)
    source: dict | None = None
    prompt: dict | None = None
    rejects: list[dict] = field(default_factory=list)
    prompt_drops: list[dict] = field(default_factory=list)
    generations: list[dict] = field(default_factory=list)
    generation_drops: list[dict] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    clusters: list[dict] = field(default_factory=list)
    versions: list[dict] = field(default_factory=list)
    """{"name", "version", "example_id", "split"}"""
    reasons: list[str] = field(default_factory=list)


_GENERATION_FIELDS = (
    "teacher_model", "status", "request_hash", "request_hashes", "prompt_tokens", "completion_tokens",
    "latency_ms", "attempts", "finish_reason", "simulated", "response_id", "generated_at", "error",
)


_PUBLISHED_COLUMNS = ["example_id", "prompt_id", "teacher_model", "split", "source_file", "source_line",
                      "source_sha256", "license", "request_hash"]


def _published_rows(storage_url: str | None, query: str, storage_options: dict | None) -> list[dict]:
    if not storage_url:
        return []
    found = []
    for name in training_set_names(storage_url, storage_options):
        for info in list_versions(storage_url, name, storage_options):
            frame = read_examples(storage_url, name, info.version, storage_options, columns=_PUBLISHED_COLUMNS)
            hits = frame.filter((pl.col("example_id") == query) | (pl.col("prompt_id") == query))
            for row in hits.iter_rows(named=True):
                found.append({"name": name, "version": info.version, **_plain(row)})
    return found


def explain(catalog_path: Path | str | None, storage_url: str | None, id: str, storage_options: dict | None = None) -> Explanation:  # noqa: A002 - the public name the brief asks for
    """Trace an ``example_id`` or a ``prompt_id`` through every stage.

    Args:
        catalog_path: the DuckDB catalog (``Settings.from_env().catalog_path``); may not exist.
        storage_url: where versions are published (scanned for versions holding the id); None to skip.
        id: an example id or a prompt id.
    """
    query = id.strip()
    published = _published_rows(storage_url, query, storage_options)
    with _Catalog(catalog_path) as cat:
        return _explain(cat, query, published)


def _explain(cat: _Catalog, query: str, published: list[dict]) -> Explanation:
    example_rows = cat.rows("training_examples", example_id=query)
    kind = "example" if example_rows or any(r["example_id"] == query for r in published) else "prompt"
    if kind == "example":
        prompt_id = (example_rows or [r for r in published if r["example_id"] == query])[0]["prompt_id"]
    else:
        prompt_id = query
        example_rows = cat.rows("training_examples", prompt_id=prompt_id)
    result = Explanation(query=query, kind=kind, status="unknown", prompt_id=prompt_id)
    lineage = example_rows or [r for r in published if r["prompt_id"] == prompt_id]
    result.example_ids = sorted({r["example_id"] for r in lineage} | ({query} if kind == "example" else set()))
    teacher_filter = {r["teacher_model"] for r in lineage if kind == "example" and r["example_id"] == query}

    raw = cat.rows("raw_prompts", prompt_id=prompt_id)
    if raw:
        row = raw[0]
        result.source = {k: row.get(k) for k in ("source_file", "source_line", "source_sha256", "license", "source_format")}
        result.prompt = {k: row.get(k) for k in ("system", "turns", "reference", "category", "text_hash")}
    elif lineage:
        row = lineage[0]
        result.source = {k: row.get(k) for k in ("source_file", "source_line", "source_sha256", "license")}
    result.rejects = _rejects_for(cat, prompt_id)
    result.prompt_drops = cat.rows("prompt_drops", prompt_id=prompt_id)

    def for_teacher(rows: list[dict]) -> list[dict]:
        return [r for r in rows if not teacher_filter or r.get("teacher_model") in teacher_filter]

    generations = for_teacher(cat.rows("teacher_generations", prompt_id=prompt_id))
    if kind == "example":
        request_hashes = {r.get("request_hash") for r in lineage if r["example_id"] == query}
        generations = [g for g in generations if g.get("request_hash") in request_hashes] or generations
    result.generations = [{k: g.get(k) for k in _GENERATION_FIELDS if k in g} for g in generations]
    result.generation_drops = for_teacher(cat.rows("generation_drops", prompt_id=prompt_id))
    result.quality = for_teacher(cat.rows("quality_scores", prompt_id=prompt_id))
    result.clusters = [
        {"teacher_model": r.get("teacher_model"), "cluster_id": r.get("cluster_id")}
        for r in for_teacher(cat.rows("deduplicated_generations", prompt_id=prompt_id))
    ]
    result.versions = [
        {"name": r["name"], "version": r["version"], "example_id": r["example_id"], "split": r.get("split")}
        for r in published
        if kind == "prompt" or r["example_id"] == query
    ]

    result.reasons += [f"source row rejected: {r.get('reason')} ({r.get('detail') or ''})" for r in result.rejects]
    result.reasons += [_prompt_drop_sentence(d) for d in result.prompt_drops]
    result.reasons += [f"teacher call failed: {g.get('error') or 'no error recorded'}" for g in result.generations if g.get("status") == "failed"]
    result.reasons += [_generation_drop_sentence(d) for d in result.generation_drops]
    result.reasons += [
        f"failed quality rules {', '.join(q.get('failed_rules') or []) or '(unnamed)'} (score {q.get('score')})"
        for q in result.quality
        if q.get("passed") is False
    ]
    # The catalog's training_examples is the current state; published versions are history
    # (an example can sit in v0001 and have been dropped since). Without a catalog, trust storage.
    knows_current = cat.has_rows("training_examples")
    if example_rows or (result.versions and not knows_current and not result.reasons):
        result.status = "kept"
    elif result.reasons:
        result.status = "dropped"
    elif raw or result.generations or result.versions:
        result.status = "dropped"
        result.reasons.append("not in the current training examples and no stage recorded a drop (not yet processed?)")
    else:
        result.kind = "unknown" if kind == "prompt" else kind
        result.reasons.append(f"no table in the catalog and no published version knows the id {query!r}")
    return result
