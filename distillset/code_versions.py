"""Content-derived code versions of the stages whose output the rules decide (plain Python, no Dagster).

A stage's code version changes when what decides its output changes: the quality SQL, the refusal
phrases or a threshold for ``quality_scores``; the sampling parameters or the system prompt for the
teacher's stages. The orchestration layer puts these on the assets, so the UI marks the training
sets built under the old rules as stale.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from distillset.quality.patterns import SHIPPED_PATTERNS
from distillset.settings import QualityThresholds, SamplingSettings
from distillset.settings.paths import SQL_DIR

QUALITY_SQL_DIR = SQL_DIR / "quality"
# Short enough to read in the UI, long enough never to collide between two rule sets.
_VERSION_CHARS = 16


def quality_sql_files(sql_dir: Path = QUALITY_SQL_DIR) -> list[Path]:
    """The quality rule files (``sql/quality/*.sql``), sorted by name."""
    return sorted(sql_dir.glob("*.sql"))


def quality_code_version(
    thresholds: QualityThresholds,
    extra_patterns: Path | None = None,
    *,
    sql_dir: Path = QUALITY_SQL_DIR,
    patterns: Path = SHIPPED_PATTERNS,
) -> str:
    """A hash of everything that decides ``quality_scores``: the SQL files, the phrase tables, the thresholds.

    Args:
        thresholds: the rule thresholds.
        extra_patterns: the user's extra refusal phrases (``DISTILLSET_REFUSAL_PATTERNS``), or None.
        sql_dir: the folder of the quality SQL files.
        patterns: the shipped refusal phrase table.
    """
    digest = hashlib.sha256()
    for path in [*quality_sql_files(sql_dir), patterns, *([extra_patterns] if extra_patterns else [])]:
        digest.update(path.name.encode() + b"\0")
        # A missing extra file fails the stage itself with a clear message; here it only hashes its name.
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    digest.update(json.dumps(thresholds.sql_parameters(), sort_keys=True).encode())
    return digest.hexdigest()[:_VERSION_CHARS]


def teacher_code_version(sampling: SamplingSettings) -> str:
    """A hash of what decides a teacher's answers besides the prompt: the sampling and the system prompt."""
    decided = {"sampling": sampling.params(), "system_prompt": sampling.system_prompt}
    return hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:_VERSION_CHARS]
