"""``distillset score INPUT --out OUT``: score teacher answers with the SQL quality rules.

The input contract (JSONL or Parquet rows; ``INPUT_CONTRACT`` is what ``--help`` prints):

* the answer: ``response``, else Alpaca ``output``, else the last turn of ``messages`` when it is
  an assistant turn (the project's own ``train.jsonl`` rows score as they are);
* the prompt: ``prompt``, else Alpaca ``instruction`` (and ``input``), else GSM8K ``question``,
  else the user turns of ``messages`` (before the answer) joined by a blank line;
* the reference (optional): ``reference``, else GSM8K ``answer`` on a row with a ``question``; in any
  form the verifier reads (``72``, ``#### 72``, a worked solution ending in ``#### 72``, LaTeX);
* ``finish_reason`` (optional): ``length`` marks a truncated answer.

The output (JSONL or Parquet, by extension) holds every input row with all its fields, plus the
signals, ``score``, ``passed`` and ``failed_rules``; a summary goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

import polars as pl

from distillset.cli.common import settings_or_exit
from distillset.jsonl import iter_json_objects
from distillset.quality.gates import evaluate_gates
from distillset.quality.score import score_frame
from distillset.quality.summary import quality_summary

NAME = "score"
HELP = "score teacher answers (JSONL/Parquet) with the quality rules and write them with their signals"

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_KEY = "__distillset_row__"


INPUT_CONTRACT = """\
input rows (JSONL or Parquet):
  answer     'response', else Alpaca 'output', else the last 'messages' turn when it is an assistant
             turn (distillset's own train.jsonl / validation.jsonl rows score as they are)
  prompt     'prompt', else Alpaca 'instruction' (+ 'input'), else GSM8K 'question', else the user
             turns of 'messages' (before the answer)
  reference  optional: 'reference', else GSM8K 'answer' next to a 'question'; '72', '#### 72' or a
             worked solution ending in '#### 72' (GSM8K's own form), LaTeX such as '\\frac{3}{4}'
  finish_reason  optional: 'length' marks a truncated answer
every input field is kept in OUT; the signals, score, passed and failed_rules are added"""


class InputError(ValueError):
    """The input cannot be scored; the message says which row and why."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = INPUT_CONTRACT
    parser.add_argument("input", type=Path, metavar="INPUT", help="JSONL or Parquet file of rows to score")
    parser.add_argument("--out", type=Path, required=True, help="output file (.jsonl or .parquet)")
    parser.add_argument(
        "--extra-patterns",
        type=Path,
        default=None,
        help="CSV of extra refusal phrases (default: $DISTILLSET_REFUSAL_PATTERNS)",
    )
    parser.add_argument("--fail-on-gates", action="store_true", help="exit with status 1 when a quality gate fails")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    try:
        _check_paths(args.input, args.out)
        rows = _read(args.input)
        scoring = _scoring_frame(rows)
        scores = score_frame(
            scoring,
            thresholds=settings.quality.thresholds,
            key_column=_KEY,
            extra_patterns=args.extra_patterns or settings.quality.refusal_patterns,
        )
        _write(rows, scores.drop(_KEY), args.out)
    except (InputError, FileNotFoundError, ValueError) as exc:
        print(f"distillset score: {exc}", file=sys.stderr)
        return 2
    gates = evaluate_gates(scores, settings.gates)
    _print_summary(quality_summary(scores), gates, args.out)
    return 1 if args.fail_on_gates and not all(g.passed for g in gates) else 0


def _check_paths(source: Path, out: Path) -> None:
    if not source.is_file():
        raise InputError(f"input file not found: {source}")
    for path in (source, out):
        if not path.name.lower().endswith(_JSONL_SUFFIXES + _PARQUET_SUFFIXES):
            raise InputError(f"{path}: unsupported file type; use .jsonl or .parquet")
    if source.resolve() == out.resolve():
        raise InputError("--out must differ from the input: the input is never overwritten")


def _read(path: Path) -> list[dict] | pl.DataFrame:
    """JSONL as a list of dicts (every field kept as written), Parquet as a frame."""
    if path.name.lower().endswith(_PARQUET_SUFFIXES):
        return pl.read_parquet(path)
    return [record for _, record in iter_json_objects(path)]


# The fields a row's prompt, answer and reference are read from (any others are kept, unread).
_READ_FIELDS = ("prompt", "instruction", "input", "question", "messages", "response", "output", "answer", "reference")
_READ_FIELDS += ("finish_reason",)


def _scoring_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    if isinstance(rows, pl.DataFrame):
        present = [name for name in _READ_FIELDS if name in rows.columns]
        records = rows.select(present).to_dicts() if present else [{} for _ in range(rows.height)]
    else:
        records = rows
    prompts, responses, references, finish_reasons = [], [], [], []
    for number, record in enumerate(records, start=1):
        prompt, response = _prompt_and_response(record, number)
        prompts.append(prompt)
        responses.append(response)
        references.append(_reference_of(record))
        finish_reasons.append(_text_or_none(record.get("finish_reason"), "finish_reason", number))
    return pl.DataFrame(
        {
            _KEY: range(len(records)),
            "prompt_text": prompts,
            "response": responses,
            "reference": references,
            "finish_reason": finish_reasons,
        },
        schema={
            _KEY: pl.Int64,
            "prompt_text": pl.Utf8,
            "response": pl.Utf8,
            "reference": pl.Utf8,
            "finish_reason": pl.Utf8,
        },
    )


def _prompt_and_response(record: dict, number: int) -> tuple[str, str | None]:
    """The prompt text and the answer of one row, by the input contract of the module docstring."""
    messages = record.get("messages")
    if "response" in record:
        response = _text_or_none(record.get("response"), "response", number)
    elif "output" in record:
        response = _text_or_none(record.get("output"), "output", number)
    elif _ends_with_assistant(messages):
        # The project's own output (train.jsonl): the last assistant turn is the answer.
        response = _content_text(messages[-1].get("content"))
        messages = messages[:-1]
    else:
        raise InputError(
            f"row {number}: missing field 'response' (or an Alpaca 'output', or 'messages' ending with an "
            "assistant turn)"
        )
    if isinstance(record.get("prompt"), str):
        return record["prompt"], response
    if isinstance(record.get("instruction"), str):
        extra = record.get("input")
        parts = [record["instruction"], extra if isinstance(extra, str) else ""]
        return "\n\n".join(part for part in parts if part.strip()), response
    if isinstance(record.get("question"), str):
        return record["question"], response
    if not isinstance(messages, list):
        raise InputError(
            f"row {number}: needs a 'prompt' string, an Alpaca 'instruction', a GSM8K 'question' or a 'messages' list"
        )
    turns = []
    for message in messages:
        if not isinstance(message, dict):
            raise InputError(f"row {number}: every entry of 'messages' must be an object with 'role' and 'content'")
        if message.get("role") == "user":
            turns.append(_content_text(message.get("content")))
    if not turns:
        raise InputError(f"row {number}: 'messages' has no user turn")
    return "\n\n".join(turns), response


def _ends_with_assistant(messages) -> bool:
    return (
        isinstance(messages, list)
        and bool(messages)
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") == "assistant"
    )


def _reference_of(record: dict) -> str | None:
    # GSM8K rows carry their reference as `answer` (a worked solution ending in "#### 72").
    value = record.get("reference")
    if value is None and isinstance(record.get("question"), str):
        value = record.get("answer")
    return None if value is None else str(value)


def _content_text(content) -> str:
    # OpenAI content is a string or a list of parts; only the text parts are prompt text.
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return "" if content is None else str(content)


def _text_or_none(value, field: str, number: int) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"row {number}: '{field}' must be a string or null, not {type(value).__name__}")


def _write(rows: list[dict] | pl.DataFrame, scores: pl.DataFrame, out: Path) -> None:
    existing = rows.columns if isinstance(rows, pl.DataFrame) else sorted({k for r in rows for k in r})
    replaced = [c for c in scores.columns if c in existing]
    if replaced:
        print(f"distillset score: replacing existing column(s) {', '.join(replaced)}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target then renamed, so a crash never leaves half a file under OUT.
    partial = out.with_name(f".{out.name}.partial")
    to_parquet = out.name.lower().endswith(_PARQUET_SUFFIXES)
    try:
        if isinstance(rows, pl.DataFrame):
            merged = rows.drop(replaced).hstack(scores)
            merged.write_parquet(partial) if to_parquet else merged.write_ndjson(partial)
        elif to_parquet:
            records = [{**row, **signals} for row, signals in zip(rows, scores.iter_rows(named=True), strict=True)]
            try:
                frame = pl.DataFrame(records, infer_schema_length=None)
            except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
                raise InputError(
                    f"rows cannot share one Parquet schema (a field changes type between rows): {exc}"
                ) from None
            frame.write_parquet(partial)
        else:
            with partial.open("w", encoding="utf-8") as handle:
                for row, signals in zip(rows, scores.iter_rows(named=True), strict=True):
                    handle.write(json.dumps({**row, **signals}, ensure_ascii=False) + "\n")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _print_summary(summary: dict, gates, out: Path) -> None:
    rows = summary["rows"]
    print(f"scored {rows} row(s) -> {out}")
    if rows:
        print(f"passed: {summary['passed']} ({summary['pass_rate']:.1%}), mean score {summary['mean_score']:.3f}")
    top = Counter({rule: n for rule, n in summary["failed_rules"].items() if n}).most_common(5)
    if top:
        print("top failed rules: " + ", ".join(f"{rule} {n}" for rule, n in top))
    verifiable = summary["verifiable"]
    if verifiable["rows"]:
        accuracy = verifiable["accuracy"]
        print(
            f"verifiable: {verifiable['correct']} correct, {verifiable['wrong']} wrong, "
            f"{verifiable['no_final_answer']} without a final answer, {verifiable['unverifiable']} unverifiable"
            + (f" (accuracy {accuracy:.1%})" if accuracy is not None else "")
        )
    for gate in gates:
        print(f"gate {gate.name}: {'pass' if gate.passed else 'FAIL'} - {gate.description}")
