"""Where does this example come from? The lineage of one example or prompt through every stage.

The answer joins the DuckDB catalog (the tables of ``docs/engine.md``, opened read-only) with the
published versions in storage; ``distillset explain`` only formats it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distillset.audit.catalog_reader import CatalogReader, drop_sentence, plain, rejects_for
from distillset.publish.lookup import find_published


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
    """For an id several teachers answered: ``kept`` when any teacher's example is kept (see ``by_teacher``)."""
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
    """{"name", "version", "example_id", "split", "teacher_model", "run_id"}: ``run_id`` is the
    Dagster run that published the version"""
    reasons: list[str] = field(default_factory=list)
    by_teacher: dict[str, str] = field(default_factory=dict)
    """teacher model -> ``kept`` / ``dropped`` / ``not processed``: the fate per teacher."""
    answer_checks: list[dict] = field(default_factory=list)
    """{"teacher_model", "expected", "extracted", "result"}: the verifiable answer rule's inputs
    (reference answer of the prompt, final answer read from the teacher's answer)."""
    runs: list[dict] = field(default_factory=list)
    """{"teacher_model", "run_id"}: the Dagster runs that built the current training examples."""
    samples: list[dict] = field(default_factory=list)
    """Best-of-N: every sample of the prompt (``teacher_samples``), its verdict, kept or why not."""


_GENERATION_FIELDS = (
    "teacher_model",
    "status",
    "response",
    "served_model",
    "request_hash",
    "request_hashes",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "attempts",
    "finish_reason",
    "simulated",
    "response_id",
    "generated_at",
    "error",
)


_PUBLISHED_COLUMNS = [
    "example_id",
    "prompt_id",
    "teacher_model",
    "split",
    "source_file",
    "source_line",
    "source_sha256",
    "license",
    "request_hash",
]


def _published_rows(storage_url: str | None, query: str, storage_options: dict | None) -> list[dict]:
    if not storage_url:
        return []
    # A version's row-group index (its manifest says so) reads one row group, not the whole file.
    return [
        {"name": hit.name, "version": hit.version, "run_id": hit.run_id, **plain(row)}
        for hit in find_published(storage_url, query, _PUBLISHED_COLUMNS, storage_options)
        for row in hit.rows
    ]


def _with_turns(generation: dict) -> dict:
    """A generation row with ``turns`` (one teacher call per turn) and ``retries`` beyond them:
    ``attempts`` is summed over turns, so a two-turn answer without a retry has 2 attempts."""
    turns = len(generation.get("request_hashes") or []) or 1
    attempts = generation.get("attempts")
    return {**generation, "turns": turns, "retries": None if attempts is None else max(0, int(attempts) - turns)}


def _teacher_fates(result: Explanation, example_rows: list[dict]) -> dict[str, str]:
    teachers = {r.get("teacher_model") for r in example_rows + result.generations + result.quality}
    teachers |= {d.get("teacher_model") for d in result.generation_drops}
    kept = {r.get("teacher_model") for r in example_rows}
    dropped = {g.get("teacher_model") for g in result.generations if g.get("status") != "ok"}
    dropped |= {d.get("teacher_model") for d in result.generation_drops}
    dropped |= {q.get("teacher_model") for q in result.quality if q.get("passed") is False}
    fates = {}
    for teacher in sorted(t for t in teachers if t):
        fates[teacher] = "kept" if teacher in kept else "dropped" if teacher in dropped else "not processed"
    return fates


def explain(
    catalog_path: Path | str | None, storage_url: str | None, id: str, storage_options: dict | None = None
) -> Explanation:  # noqa: A002 - the public name the brief asks for
    """Trace an ``example_id`` or a ``prompt_id`` through every stage.

    Args:
        catalog_path: the DuckDB catalog (``Settings.from_env().catalog_path``); may not exist.
        storage_url: where versions are published (scanned for versions holding the id); None to skip.
        id: an example id or a prompt id.
    """
    query = id.strip()
    published = _published_rows(storage_url, query, storage_options)
    with CatalogReader(catalog_path) as cat:
        return _explain(cat, query, published)


_SAMPLE_FIELDS = (
    "teacher_model",
    "sample_index",
    "status",
    "request_hash",
    "verdict",
    "verdict_reason",
    "verifier",
    "verdict_expected",
    "verdict_extracted",
    "verdict_detail",
    "quality_score",
    "kept",
    "selection",
    "drop_reason",
)


def samples_of(cat: CatalogReader, prompt_id: str, for_teacher) -> list[dict]:
    """Every best-of-N sample of ``prompt_id`` (``teacher_samples``), in sample order."""
    rows = for_teacher(cat.rows("teacher_samples", prompt_id=prompt_id))
    rows.sort(key=lambda r: (str(r.get("teacher_model")), r.get("sample_index") or 0))
    return [{k: r.get(k) for k in _SAMPLE_FIELDS} for r in rows]


def _explain(cat: CatalogReader, query: str, published: list[dict]) -> Explanation:
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
        result.source = {
            k: row.get(k) for k in ("source_file", "source_line", "source_sha256", "license", "source_format")
        }
        result.prompt = {k: row.get(k) for k in ("system", "turns", "reference", "category", "text_hash")}
    elif lineage:
        row = lineage[0]
        result.source = {k: row.get(k) for k in ("source_file", "source_line", "source_sha256", "license")}
    result.rejects = rejects_for(cat, prompt_id)
    result.prompt_drops = cat.rows("prompt_drops", prompt_id=prompt_id)

    def for_teacher(rows: list[dict]) -> list[dict]:
        return [r for r in rows if not teacher_filter or r.get("teacher_model") in teacher_filter]

    generations = for_teacher(cat.rows("teacher_generations", prompt_id=prompt_id))
    if kind == "example":
        request_hashes = {r.get("request_hash") for r in lineage if r["example_id"] == query}
        generations = [g for g in generations if g.get("request_hash") in request_hashes] or generations
    result.generations = [_with_turns({k: g.get(k) for k in _GENERATION_FIELDS if k in g}) for g in generations]
    result.samples = samples_of(cat, prompt_id, for_teacher)
    result.generation_drops = for_teacher(cat.rows("generation_drops", prompt_id=prompt_id))
    result.quality = for_teacher(cat.rows("quality_scores", prompt_id=prompt_id))
    result.clusters = [
        {"teacher_model": r.get("teacher_model"), "cluster_id": r.get("cluster_id")}
        for r in for_teacher(cat.rows("deduplicated_generations", prompt_id=prompt_id))
    ]
    result.versions = [
        {
            "name": r["name"],
            "version": r["version"],
            "example_id": r["example_id"],
            "split": r.get("split"),
            "teacher_model": r.get("teacher_model"),
            "run_id": r.get("run_id"),
        }
        for r in published
        if kind == "prompt" or r["example_id"] == query
    ]
    reference = (result.prompt or {}).get("reference")
    result.answer_checks = [
        {
            "teacher_model": q.get("teacher_model"),
            "expected": reference,
            "extracted": q.get("verifiable_answer"),
            "result": q.get("verifiable_result"),
        }
        for q in result.quality
        if q.get("verifiable_result") is not None
    ]
    result.runs = sorted(
        ({"teacher_model": r.get("teacher_model"), "run_id": r.get("run_id")} for r in example_rows if r.get("run_id")),
        key=lambda r: (str(r["teacher_model"]), str(r["run_id"])),
    )

    result.reasons += [f"source row rejected: {r.get('reason')} ({r.get('detail') or ''})" for r in result.rejects]
    result.reasons += [drop_sentence("prompt", d) for d in result.prompt_drops]
    result.reasons += [
        f"teacher call failed: {g.get('error') or 'no error recorded'}"
        for g in result.generations
        if g.get("status") == "failed"
    ]
    result.reasons += [drop_sentence("generation", d) for d in result.generation_drops]
    checks = {c["teacher_model"]: c for c in result.answer_checks}
    result.reasons += [
        f"{q.get('teacher_model')}: failed quality rules {', '.join(q.get('failed_rules') or []) or '(unnamed)'} "
        f"(score {q.get('score')})" + _answer_check_note(checks.get(q.get("teacher_model")))
        for q in result.quality
        if q.get("passed") is False
    ]
    result.by_teacher = _teacher_fates(result, example_rows)
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


def _answer_check_note(check: dict | None) -> str:
    """``: expected 18, the answer's final number is 16`` for an answer that failed its check."""
    if not check or check.get("result") in (None, "correct"):
        return ""
    extracted = check.get("extracted")
    shown = (
        "none could be read" if extracted is None else f"{extracted:g}" if isinstance(extracted, float) else extracted
    )
    return f": expected {check.get('expected')}, the answer's final number is {shown} ({check.get('result')})"
