"""``distillset explain ID``: the lineage of an example or a prompt, or why it was dropped."""

from __future__ import annotations

import argparse
import dataclasses
import json

from distillset.audit.explain import Explanation, explain
from distillset.cli.common import add_location_flags, settings_or_exit

NAME = "explain"
ANSWER_CHARS = 300  # of the teacher's answer shown on one line (--json gives it whole)
HELP = (
    "trace an example_id or prompt_id: source line and license, the teacher's answer per teacher, best-of-N "
    "samples, quality and answer checks, dedup, Dagster runs, versions, or why it was dropped"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="an example_id or a prompt_id")
    add_location_flags(parser)


def format_explanation(e: Explanation) -> str:
    """The explanation as the indented chain a person reads top to bottom."""
    fates = e.by_teacher
    if len(fates) > 1 or (fates and e.status == "kept"):
        status = "; ".join(f"{fate.upper()} for {teacher}" for teacher, fate in fates.items())
    else:
        status = e.status.upper() + (f" ({next(iter(fates))})" if fates else "")
    lines = [f"{e.kind} {e.query}: {status}"]
    if e.prompt_id and e.prompt_id != e.query:
        lines.append(f"  prompt_id: {e.prompt_id}")
    if e.source:
        lines.append(
            f"  source: {e.source.get('source_file')} line {e.source.get('source_line')} "
            f"(sha256 {str(e.source.get('source_sha256'))[:12]}, license {e.source.get('license')})"
        )
    if e.prompt:
        if e.prompt.get("system"):
            lines.append(f"  system: {e.prompt['system'][:120]}")
        for number, turn in enumerate(e.prompt.get("turns") or [], 1):
            lines.append(f"  turn {number}: {' '.join(str(turn).split())[:120]}")
    for g in e.generations:
        calls = f"{g.get('turns')} calls (one per turn)" if (g.get("turns") or 1) > 1 else "1 call"
        lines.append(
            f"  teacher answer: {g.get('teacher_model')} status={g.get('status')} request={g.get('request_hash')} "
            f"{calls}, retries={g.get('retries')} tokens={g.get('prompt_tokens')}+{g.get('completion_tokens')} "
            f"latency={float(g.get('latency_ms') or 0):.0f}ms finish={g.get('finish_reason')}"
            + (f" served by {g['served_model']}" if g.get("served_model") else "")
            + ("  SIMULATED" if g.get("simulated") else "")
        )
        if g.get("response"):
            lines.append(f"  answer: {_excerpt(g['response'])}")
    lines += format_samples(e.samples)
    for q in e.quality:
        failed = ", ".join(q.get("failed_rules") or []) or "none"
        lines.append(
            f"  quality ({q.get('teacher_model')}): score={q.get('score')} passed={q.get('passed')} "
            f"failed rules: {failed}"
        )
    for c in e.answer_checks:
        lines.append(
            f"  answer check ({c.get('teacher_model')}): expected {c.get('expected')}, extracted "
            f"{c.get('extracted')} -> {c.get('result')}"
        )
    for r in e.runs:
        lines.append(f"  built by Dagster run {r['run_id']} ({r.get('teacher_model')})")
    for c in e.clusters:
        lines.append(f"  dedup cluster: {c.get('cluster_id')} ({c.get('teacher_model')})")
    for v in e.versions:
        run = f", published by Dagster run {v['run_id']}" if v.get("run_id") else ""
        lines.append(f"  published in: {v['name']} {v['version']} ({v.get('split')}) as {v['example_id']}{run}")
    for reason in e.reasons:
        lines.append(f"  why: {reason}")
    return "\n".join(lines)


def _excerpt(answer: str, limit: int = ANSWER_CHARS) -> str:
    text = " ".join(str(answer).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_samples(samples: list[dict]) -> list[str]:
    """One line per best-of-N sample: verdict and reason, kept or why not."""
    lines = []
    for s in samples:
        verdict = s.get("verdict") or "no verifier"
        if s.get("verdict_reason") and s.get("verdict_reason") != s.get("verdict"):
            verdict += f" ({s['verdict_reason']})"
        if s.get("verdict_detail"):
            verdict += f": {s['verdict_detail']}"
        fate = f"KEPT ({s.get('selection')})" if s.get("kept") else f"dropped: {s.get('drop_reason') or 'not selected'}"
        score = s.get("quality_score")
        lines.append(
            f"  sample {s.get('sample_index')}: {verdict}; {fate}"
            + (f"; quality {float(score):.3f}" if score is not None else "")
        )
    return lines


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    result = explain(
        args.catalog or settings.catalog_location,
        args.storage_url or settings.storage_url,
        args.id,
        storage_options=settings.storage_options(),
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False, default=str))
    else:
        print(format_explanation(result))
    return 1 if result.status == "unknown" else 0
