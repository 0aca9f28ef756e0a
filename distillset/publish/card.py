"""The dataset card (``README.md``) of a training set version, rendered from its manifest.

It opens with Hugging Face YAML front matter (license, language, task, size, and ``configs``
mapping each split to its files) so a hub renders it as a dataset card and ``load_dataset`` on the
version folder gets a train and a validation split. Warnings come next, right under the title: a
reader who only sees the top of the card must learn that answers are simulated (all, or some of
them), that a source is non-commercial, or that the teacher's terms forbid training.

Everything that comes from files or settings (source names, licenses, model ids, sampling) is
escaped (``distillset.publish.markdown``): the card never carries live HTML or Markdown from data.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from distillset.publish.exports import SPLITS, export_file
from distillset.publish.layout import DATA_PARQUET, split_parquet
from distillset.publish.markdown import fenced, text, yaml_scalar

SIMULATED_BANNER = "**SIMULATED: not real teacher output.**"
MIXED_BANNER = "**MIXED: part of this set is SIMULATED, not real teacher output.**"
_TEMPLATE = Path(__file__).with_name("card_template.md")
_HISTOGRAM_BINS = 10


def score_distribution(scores: Sequence[float | None]) -> dict | None:
    """Quantiles and a 10-bin histogram over [0, 1] of the given quality scores (None when none).

    The card shows the distribution of the published rows' ``quality_score`` unless the caller
    passes the scored set's summary (``distillset.quality.summary.quality_summary``) as ``quality``.
    """
    return sorted_score_distribution(np.sort(np.array([float(s) for s in scores if s is not None], dtype=np.float64)))


def sorted_score_distribution(values: np.ndarray) -> dict | None:
    """``score_distribution`` of scores already sorted in a float array (the publisher's streaming
    pass keeps 8 bytes a row instead of a Python list)."""
    if not len(values):
        return None
    bins = np.clip((values * _HISTOGRAM_BINS).astype(np.int64), 0, _HISTOGRAM_BINS - 1)
    counts = [int(n) for n in np.bincount(bins, minlength=_HISTOGRAM_BINS)]
    first, last = float(values[0]), float(values[-1])
    return {
        "count": len(values),
        "min": first,
        "p25": _inclusive_quantile(values, 1),
        "median": _inclusive_quantile(values, 2),
        "p75": _inclusive_quantile(values, 3),
        "max": last,
        "histogram": counts,
    }


def _inclusive_quantile(values: np.ndarray, i: int, n: int = 4) -> float:
    """``statistics.quantiles(values, n=n, method="inclusive")[i - 1]``, the same float arithmetic."""
    if len(values) == 1:
        return float(values[0])
    j, delta = divmod(i * (len(values) - 1), n)
    return (float(values[j]) * (n - delta) + float(values[j + 1]) * delta) / n


def _table(rows: list[tuple], header: tuple) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _py(value: str) -> str:
    """A Python string literal (the snippets quote file URLs, which may hold any character)."""
    return json.dumps(value, ensure_ascii=False)


def _loading(file_urls: dict[str, str], remote: bool) -> list[str]:
    parquet = file_urls[DATA_PARQUET]
    by_split = {split: file_urls[split_parquet(split)] for split in SPLITS}
    chat = {split: file_urls[export_file("openai", split)] for split in SPLITS}
    lines = ["## How to load it", ""]
    if remote:
        lines += [
            "The files are on S3: set `AWS_ENDPOINT_URL` (for an S3-compatible store) and the usual AWS",
            "credential variables; `datasets`, polars and this DuckDB snippet read them through fsspec/s3fs.",
            "",
        ]
    else:
        lines += [
            "Paths are relative to this version's folder (run the snippets there); the YAML header above maps",
            'each split to its files, so `load_dataset("<this folder>")` gives the same two splits.',
            "",
        ]
    mapping = ", ".join(f"{_py(split)}: {_py(url)}" for split, url in by_split.items())
    chat_mapping = ", ".join(f"{_py(split)}: {_py(url)}" for split, url in chat.items())
    lines += [
        "```python",
        "from datasets import load_dataset",
        "",
        "# typed messages (role, content) with lineage columns, one split per file",
        f'ds = load_dataset("parquet", data_files={{{mapping}}})',
        "# OpenAI chat format only",
        f'chat = load_dataset("json", data_files={{{chat_mapping}}})',
        "",
        "import polars as pl",
        "",
        f"rows = pl.read_parquet({_py(parquet)})  # every row, with its split column",
        "```",
        "",
        "```python",
        "import duckdb",
        "",
        "con = duckdb.connect()",
    ]
    if remote:
        lines += ["import s3fs", "con.register_filesystem(s3fs.S3FileSystem())"]
    sql = f"SELECT split, count(*) FROM read_parquet('{parquet.replace(chr(39), chr(39) * 2)}') GROUP BY split"
    lines += [f"con.sql({_py(sql)}).show()", "```"]
    return lines


_HF_LICENSES = {
    "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "isc", "zlib", "unlicense", "0bsd", "cc0-1.0", "cc-by-4.0",
    "cc-by-3.0", "cc-by-2.0", "cc-by-sa-4.0", "cc-by-sa-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0",
    "odc-by", "odbl", "pddl", "gpl-2.0", "gpl-3.0", "lgpl-3.0", "agpl-3.0", "gfdl", "llama2", "llama3", "llama3.1",
    "llama3.2", "llama3.3", "llama4", "unknown",
}  # fmt: skip
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]


def _hf_license(license_id: str | None) -> str:
    """A license id of the hub's list: SPDX-like ids lower-cased, Llama terms as ``llama3.1``, else ``other``."""
    value = (license_id or "unknown").strip().lower()
    llama = re.search(r"llama (\d)(?:\.(\d))?", value)
    if llama and "license" in value:
        value = "llama" + llama.group(1) + (f".{llama.group(2)}" if llama.group(2) else "")
    value = {"cc0": "cc0-1.0", "odc-by-1.0": "odc-by", "odbl-1.0": "odbl"}.get(value, value)
    return value if value in _HF_LICENSES else "other"


def _size_category(count: int) -> str:
    for limit, label in _SIZES:
        if count < limit:
            return label
    return "1M<n<10M" if count < 10_000_000 else "n>10M"


_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())


def guess_languages(texts: Iterable[str]) -> list[str]:
    """``["en"]`` when the prompts are written in ASCII letters (the card's ``language``), else ``[]``.

    A hub's language field is a claim; this only makes the one the text supports (no other script
    than Latin ASCII in 98% of the letters). A caller who knows better passes ``language``.
    """
    ascii_letters = other = 0
    for value in texts:
        if value.isascii():
            # The letters of ASCII text are its A-Z and a-z bytes: counted in C, the same count.
            ascii_letters += len(value.encode("ascii").translate(None, _ASCII_NON_LETTERS))
            continue
        for char in value:
            if char.isalpha():
                if char.isascii():
                    ascii_letters += 1
                else:
                    other += 1
    total = ascii_letters + other
    return ["en"] if total and ascii_letters / total >= 0.98 else []


def front_matter(manifest: dict, context: dict) -> list[str]:
    """The Hugging Face YAML header: license, language, task, size, tags and the split files."""
    licenses = manifest.get("licenses") or {}
    ids = {_hf_license(info.get("license")) for info in (licenses.get("sources") or {}).values()}
    terms = licenses.get("teacher") or {}
    if terms.get("license"):
        ids.add(_hf_license(terms["license"]))
    ids = sorted(ids) or ["unknown"]
    simulated = (manifest.get("teacher") or {}).get("simulated")
    tags = ["distillation", "synthetic", "distillset"] + (["simulated"] if simulated else [])
    languages = context.get("language") or context.get("languages") or []
    lines = ["---", "license:" + ("" if len(ids) > 1 else f" {yaml_scalar(ids[0])}")]
    lines += [f"- {yaml_scalar(i)}" for i in ids] if len(ids) > 1 else []
    if languages:
        lines += ["language:", *(f"- {yaml_scalar(lang)}" for lang in languages)]
    lines += [
        "task_categories:",
        "- text-generation",
        "size_categories:",
        f"- {yaml_scalar(_size_category(int(manifest['counts']['examples'])))}",
        f"pretty_name: {yaml_scalar(manifest['name'] + ' ' + manifest['version'])}",
        "tags:",
        *(f"- {t}" for t in tags),
        "configs:",
    ]
    configs = [("default", split_parquet)] + [
        (name, lambda split, name=name: export_file(name, split))
        for name in (["openai"] + [f for f in manifest.get("formats") or [] if f != "openai"])
    ]
    for config_name, file_of in configs:
        lines += [f"- config_name: {yaml_scalar(config_name)}", "  data_files:"]
        for split in SPLITS:
            lines += [f"  - split: {split}", f"    path: {yaml_scalar(file_of(split))}"]
    return lines + ["---", ""]


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
    given = context.get("description") or manifest.get("description")
    description = (
        text(given)
        if given
        else (
            f"A supervised fine-tuning set distilled from the teacher {text(teacher.get('model'))}: "
            "each example is a prompt from the sources below and the teacher's answer, in OpenAI chat format "
            "(multi-turn conversations stay multi-turn)."
        )
    )
    same = manifest.get("same_content_as")
    sections = {
        "front_matter": _block(front_matter(manifest, context)),
        "name": text(manifest["name"]),
        "version": manifest["version"],
        "parent": manifest.get("parent_version") or "none",
        "created_at": text(manifest["created_at"]),
        "content_hash": manifest["content_hash"],
        "same_content": f" (same content as `{same}`)" if same else "",
        "warnings": _block(_warnings(teacher, licenses)),
        "description": description,
        "how": _block(_how_it_was_made(manifest) + best_of_n_lines(context.get("best_of_n"))),
        "counts": _block(_counts(manifest["counts"])),
        "quality": _block(_quality(context)),
        "scorecards": _scorecards(context),
        "licenses": _block(_licenses(licenses)),
        "files": _block(
            _table(
                [(text(n), i["size"], f"`{i['sha256']}`") for n, i in sorted(manifest["files"].items())],
                ("file", "bytes", "sha256"),
            )
        ),
        "loading": "\n".join(_loading(file_urls, remote)),
    }
    return string.Template(_TEMPLATE.read_text(encoding="utf-8")).substitute(sections)


def _scorecards(context: dict) -> str:
    """The "Scorecards" section (``distillset.scorecards.cards.scorecard_lines``), when the caller has one."""
    return _block(context.get("scorecards") or [])


def _block(lines: list[str]) -> str:
    """Lines as one block ending with a newline (empty when there are none)."""
    return "".join(line + "\n" for line in lines)


def _warnings(teacher: dict, licenses: dict) -> list[str]:
    """What a reader who sees only the top of the card must learn, each followed by a blank line."""
    lines: list[str] = []
    terms = licenses.get("teacher") or {}
    simulated = teacher.get("simulated")
    if simulated == "mixed":
        simulated_rows, real_rows = teacher.get("simulated_rows"), teacher.get("real_rows")
        lines += [
            "> " + MIXED_BANNER + f" {simulated_rows} of {simulated_rows + real_rows} examples were produced by "
            "distillset's embedded teacher simulator, not by a real model; the others by the real teacher. "
            "**Do not train a model on this set as it is**: keep only the rows whose `simulated` column is false "
            "(`data.parquet`, `train.parquet`, `validation.parquet`), or republish without the simulated answers.",
            "",
        ]
    elif simulated:
        lines += [
            "> " + SIMULATED_BANNER + " The answers were produced by distillset's embedded teacher simulator,"
            " not by a real model: use this set to test a pipeline, never to train a model.",
            "",
        ]
    sources = licenses.get("sources") or {}
    non_commercial = sorted(text(f) for f, s in sources.items() if s.get("category") == "non_commercial")
    if non_commercial:
        lines += [
            f"> **Warning: non-commercial source(s)**: {', '.join(non_commercial)}. This set must not be used "
            "commercially.",
            "",
        ]
    if terms.get("allows_training") in ("no", "restricted"):
        lines += [
            f"> **Warning: the teacher's terms ({text(terms.get('license'))}) {text(terms.get('allows_training'))} "
            f"training other models on its outputs.** {text(terms.get('note', ''))}",
            "",
        ]
    elif terms.get("allows_training") == "terms unknown":
        lines += [
            f"> **Warning: the terms of the teacher {text(teacher.get('model'))} are unknown.** Check them before "
            "training.",
            "",
        ]
    return lines


def _how_it_was_made(manifest: dict) -> list[str]:
    teacher = manifest["teacher"]
    lines = [f"- Teacher: {text(teacher.get('model'))} ({text(teacher.get('endpoint_kind'))} endpoint)"]
    if teacher.get("simulated_rows") is not None:
        lines.append(
            f"- Answers: {teacher['real_rows']} from the real teacher, {teacher['simulated_rows']} simulated "
            "(column `simulated` of every row)"
        )
    if teacher.get("origins"):
        lines.append(
            "- Teacher origins: " + ", ".join(f"{text(k)} ({v})" for k, v in sorted(teacher["origins"].items()))
        )
    if teacher.get("served_models"):
        lines.append(
            "- Served models: " + ", ".join(f"{text(k)} ({v})" for k, v in sorted(teacher["served_models"].items()))
        )
    batches = teacher.get("batches") or {}
    if batches.get("answers"):
        lines.append(
            f"- Provider batches: {batches['answers']} of {batches['calls']} teacher calls came through the Batch API, "
            f"estimated ${batches['cost_usd']:.4f} at {batches['price_factor']:g} x the online price"
        )
    if manifest.get("prompts_url"):
        lines.append(f"- Prompts: {text(manifest['prompts_url'])}")
    lines += [
        f"- Code: distillset {text(manifest['code'].get('version'))}"
        + (f" (git `{manifest['code']['git_commit'][:12]}`)" if manifest["code"].get("git_commit") else ""),
    ]
    if manifest.get("config_hash"):
        lines.append(f"- Config hash: `{manifest['config_hash']}`")
    if manifest.get("dagster_run_id"):
        lines.append(f"- Dagster run: {text(manifest['dagster_run_id'])}")
    if teacher.get("sampling"):
        lines += ["- Sampling:", "", *fenced(json.dumps(teacher["sampling"], sort_keys=True, indent=2), "json")]
    else:
        lines.append("- Sampling: not recorded")
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
        lines += ["", *_table([(text(k), v) for k, v in counts["stages"].items()], ("stage", "rows"))]
    if counts.get("drops"):
        drops = [(text(k), v) for k, v in _flatten(counts["drops"]).items()]
        lines += ["", *_table(drops, ("dropped because", "rows"))]
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
                [(text(k), v) for k, v in sorted(failed_rules.items(), key=lambda item: (-item[1], item[0]))],
                ("failed rule (dropped)", "rows"),
            ),
        ]
    return lines + [""]


def _licenses(licenses: dict) -> list[str]:
    terms = licenses.get("teacher") or {}
    lines = []
    if terms:
        lines.append(
            f"- Teacher terms: {text(terms.get('license') or 'terms unknown')}: training on outputs "
            f"{text(terms.get('allows_training'))}. "
            f"{text(terms.get('note', ''))}".rstrip()
        )
    for attribution in licenses.get("attribution") or []:
        lines.append(f"- Attribution required: **{text(attribution)}**")
    for source, info in (licenses.get("sources") or {}).items():
        lines.append(
            f"- Source {text(source)}: {text(info.get('license'))} "
            f"({text(info.get('category', 'unknown').replace('_', '-'))})"
        )
    for warning in licenses.get("warnings") or []:
        lines.append(f"- Note: {text(warning)}")
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
