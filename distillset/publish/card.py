"""The dataset card (``README.md``) of a training set version, rendered from its manifest.

Warnings come first: a reader who only sees the top of the card must learn that the answers are
simulated, that a source is non-commercial, or that the teacher's terms forbid training.
"""

from __future__ import annotations

import json
import statistics
import string
from collections.abc import Sequence
from pathlib import Path

SIMULATED_BANNER = "**SIMULATED: not real teacher output.**"
_TEMPLATE = Path(__file__).with_name("card_template.md")
_HISTOGRAM_BINS = 10


def score_distribution(scores: Sequence[float | None]) -> dict | None:
    """Quantiles and a 10-bin histogram over [0, 1] of the given quality scores (None when none).

    The card shows the distribution of the published rows' ``quality_score`` unless the caller
    passes the scored set's summary (``distillset.quality.summary.quality_summary``) as ``quality``.
    """
    values = sorted(float(s) for s in scores if s is not None)
    if not values:
        return None
    counts = [0] * _HISTOGRAM_BINS
    for value in values:
        counts[min(_HISTOGRAM_BINS - 1, max(0, int(value * _HISTOGRAM_BINS)))] += 1
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {
        "count": len(values),
        "min": values[0],
        "p25": quartiles[0],
        "median": quartiles[1],
        "p75": quartiles[2],
        "max": values[-1],
        "histogram": counts,
    }


def _table(rows: list[tuple], header: tuple) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _loading(file_urls: dict[str, str], remote: bool) -> list[str]:
    train, validation, parquet = file_urls["train.jsonl"], file_urls["validation.jsonl"], file_urls["data.parquet"]
    lines = ["## How to load it", ""]
    if remote:
        lines += [
            "The files are on S3: set `AWS_ENDPOINT_URL` (for an S3-compatible store) and the usual AWS",
            "credential variables; `datasets`, polars and this DuckDB snippet read them through fsspec/s3fs.",
            "",
        ]
    lines += [
        "```python",
        "from datasets import load_dataset",
        "",
        f'chat = load_dataset("json", data_files={{"train": "{train}", "validation": "{validation}"}})',
        f'lineage = load_dataset("parquet", data_files="{parquet}")',
        "",
        "import polars as pl",
        "",
        f'rows = pl.read_parquet("{parquet}")',
        "```",
        "",
        "```python",
        "import duckdb",
        "",
        "con = duckdb.connect()",
    ]
    if remote:
        lines += ["import s3fs", "con.register_filesystem(s3fs.S3FileSystem())"]
    lines += [
        f"con.sql(\"SELECT split, count(*) FROM read_parquet('{parquet}') GROUP BY split\").show()",
        "```",
    ]
    return lines


def render_card(
    manifest: dict, *, file_urls: dict[str, str], card_context: dict | None = None, remote: bool = False
) -> str:
    """The Markdown dataset card: ``card_template.md`` filled with the manifest's sections.

    Args:
        manifest: the version's manifest (``files`` may lack ``README.md``: the card is written
            before the manifest so a visible version is always complete).
        file_urls: file name -> the URL or path users open (``s3://...`` or a local path).
        card_context: optional ``quality_scores`` (list of floats) or ``quality`` (a
            ``quality_summary`` dict), ``failed_rules`` (rule -> count), ``description``.
        remote: whether the files are on S3 (adds credential hints to the snippets).
    """
    context = dict(card_context or {})
    teacher = manifest["teacher"]
    licenses = manifest.get("licenses") or {}
    description = (
        context.get("description")
        or manifest.get("description")
        or (
            f"A supervised fine-tuning set distilled from the teacher `{teacher.get('model')}`: "
            "each example is a prompt from the sources below and the teacher's answer, in OpenAI chat format "
            "(multi-turn conversations stay multi-turn)."
        )
    )
    sections = {
        "name": manifest["name"],
        "version": manifest["version"],
        "parent": manifest.get("parent_version") or "none",
        "created_at": manifest["created_at"],
        "content_hash": manifest["content_hash"],
        "warnings": _block(_warnings(teacher, licenses)),
        "description": description,
        "how": _block(_how_it_was_made(manifest) + best_of_n_lines(context.get("best_of_n"))),
        "counts": _block(_counts(manifest["counts"])),
        "quality": _block(_quality(context)),
        "licenses": _block(_licenses(licenses)),
        "files": _block(
            _table(
                [(n, i["size"], f"`{i['sha256']}`") for n, i in sorted(manifest["files"].items())],
                ("file", "bytes", "sha256"),
            )
        ),
        "loading": "\n".join(_loading(file_urls, remote)),
    }
    return string.Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(sections)


def _block(lines: list[str]) -> str:
    """Lines as one block ending with a newline (empty when there are none)."""
    return "".join(line + "\n" for line in lines)


def _warnings(teacher: dict, licenses: dict) -> list[str]:
    """What a reader who sees only the top of the card must learn, each followed by a blank line."""
    lines: list[str] = []
    terms = licenses.get("teacher") or {}
    if teacher.get("simulated"):
        lines += [
            SIMULATED_BANNER + " The answers were produced by distillset's embedded teacher simulator,"
            " not by a real model: use this set to test a pipeline, never to train a model.",
            "",
        ]
    sources = licenses.get("sources") or {}
    non_commercial = sorted(f for f, s in sources.items() if s.get("category") == "non_commercial")
    if non_commercial:
        lines += [
            f"> **Warning: non-commercial source(s)**: {', '.join(non_commercial)}. This set must not be used "
            "commercially.",
            "",
        ]
    if terms.get("allows_training") in ("no", "restricted"):
        lines += [
            f"> **Warning: the teacher's terms ({terms.get('license')}) {terms.get('allows_training')} training other "
            f"models on its outputs.** {terms.get('note', '')}",
            "",
        ]
    elif terms.get("allows_training") == "terms unknown":
        lines += [
            f"> **Warning: the terms of the teacher `{teacher.get('model')}` are unknown.** Check them before "
            "training.",
            "",
        ]
    return lines


def _how_it_was_made(manifest: dict) -> list[str]:
    teacher = manifest["teacher"]
    lines = [
        f"- Teacher: `{teacher.get('model')}` ({teacher.get('endpoint_kind')} endpoint)",
        "- Sampling: "
        + (f"`{json.dumps(teacher['sampling'], sort_keys=True)}`" if teacher.get("sampling") else "not recorded"),
        f"- Code: distillset {manifest['code'].get('version')}"
        + (f" (git `{manifest['code']['git_commit'][:12]}`)" if manifest["code"].get("git_commit") else ""),
    ]
    if manifest.get("config_hash"):
        lines.append(f"- Config hash: `{manifest['config_hash']}`")
    if manifest.get("dagster_run_id"):
        lines.append(f"- Dagster run: `{manifest['dagster_run_id']}`")
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def best_of_n_lines(report: dict | None) -> list[str]:
    """The card's best-of-N lines: sampling policy, verifiers and pass rates, coverage, cost, histogram."""
    if not report or not report.get("policy"):
        return []
    policy = report["policy"]
    stop = "early stop once k passed" if policy.get("early_stop") else "all N (pass-rate window)"
    lines = [
        f"- Best-of-N: up to N={policy['samples_per_prompt']} samples per prompt, at most "
        f"k={policy['max_answers_per_prompt']} published, {stop}"
        + (
            f"; pass-rate window [{policy.get('pass_rate_min') or 0:g}, {policy.get('pass_rate_max') or 1:g}]"
            if not policy.get("early_stop")
            else ""
        )
    ]
    if report.get("prompts") is None:
        return lines
    lines.append(
        f"- Samples paid per prompt: {report.get('samples_paid_per_prompt')}; "
        f"pass@1 {_percent(report.get('pass_at_1'))}, "
        f"pass@N {_percent(report.get('pass_at_n'))}, coverage {_percent(report.get('coverage'))} "
        f"(verifiable prompts with a kept verified answer)"
    )
    cost = report.get("cost_per_kept_example_usd")
    lines.append(
        f"- Cost per kept example: {'n/a' if cost is None else f'${cost:.6f}'} "
        f"({report.get('tokens_per_kept_example')} tokens)"
    )
    for verifier, stats in sorted((report.get("verifiers") or {}).items()):
        lines.append(f"- Verifier `{verifier}`: {stats['correct']} of {stats['samples']} samples correct")
    histogram = report.get("pass_rate_histogram") or {}
    if any(histogram.values()):
        lines += ["", *_table(list(histogram.items()), ("pass rate", "prompts"))]
    return lines


def _counts(counts: dict) -> list[str]:
    lines = _table(
        [(split, n) for split, n in sorted(counts["splits"].items())] + [("total", counts["examples"])],
        ("split", "examples"),
    )
    if counts.get("stages"):
        lines += ["", *_table(list(counts["stages"].items()), ("stage", "rows"))]
    if counts.get("drops"):
        lines += ["", *_table(list(_flatten(counts["drops"]).items()), ("dropped because", "rows"))]
    return lines


def _quality(context: dict) -> list[str]:
    """The quality section with its heading and a trailing blank line, or nothing."""
    quality = context.get("quality") or score_distribution(context.get("quality_scores") or [])
    failed_rules = {
        k: v for k, v in (context.get("failed_rules") or (quality or {}).get("failed_rules") or {}).items() if v
    }
    if not (quality and (quality.get("count") or failed_rules)):
        return []
    lines = ["## Quality", ""]
    if quality.get("count") and quality.get("min") is not None:
        lines += _table(
            [(quality["count"], *(f"{quality[k]:.3f}" for k in ("min", "p25", "median", "p75", "max")))],
            ("scored", "min", "p25", "median", "p75", "max"),
        )
    if quality.get("pass_rate") is not None:
        lines += ["", f"Share of scored answers passing every rule: {quality['pass_rate']:.1%}"]
    accuracy = (quality.get("verifiable") or {}).get("accuracy")
    if accuracy is not None:
        lines += ["", f"Accuracy on verifiable answers (e.g. GSM8K): {accuracy:.1%}"]
    if quality.get("histogram"):
        bins = len(quality["histogram"])
        lines += [
            "",
            *_table(
                [(f"{i / bins:.1f}-{(i + 1) / bins:.1f}", n) for i, n in enumerate(quality["histogram"])],
                ("score", "examples"),
            ),
        ]
    if failed_rules:
        lines += [
            "",
            *_table(
                sorted(failed_rules.items(), key=lambda item: (-item[1], item[0])), ("failed rule (dropped)", "rows")
            ),
        ]
    return lines + [""]


def _licenses(licenses: dict) -> list[str]:
    terms = licenses.get("teacher") or {}
    lines = []
    if terms:
        lines.append(
            f"- Teacher terms: {terms.get('license') or 'terms unknown'}: training on outputs "
            f"{terms.get('allows_training')}. "
            f"{terms.get('note', '')}".rstrip()
        )
    for attribution in licenses.get("attribution") or []:
        lines.append(f"- Attribution required: **{attribution}**")
    for source, info in (licenses.get("sources") or {}).items():
        lines.append(
            f"- Source `{source}`: {info.get('license')} ({info.get('category', 'unknown').replace('_', '-')})"
        )
    for warning in licenses.get("warnings") or []:
        lines.append(f"- Note: {warning}")
    return lines


def _flatten(drops: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in drops.items():
        label = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix=f"{label} / "))
        else:
            flat[label] = value
    return flat
