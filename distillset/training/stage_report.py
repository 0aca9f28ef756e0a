"""Row counts at every stage and drops per reason, read from the catalog for one teacher.

They go into the manifest, the dataset card and the `distillset run` summary, so a user sees
at a glance how many prompts became how many examples, and where the rest went.
"""

from __future__ import annotations

from distillset.catalog import Location, connect, table_exists

# (stage, table, filter on the teacher partition?, extra condition)
_STAGES = [
    ("raw_prompts", "raw_prompts", False, ""),
    ("rejected_prompts", "rejects", False, "stage = 'raw_prompts'"),
    ("prompt_pool", "prompt_pool", False, ""),
    ("teacher_generations", "teacher_generations", True, ""),
    ("teacher_generations_ok", "teacher_generations", True, "status = 'ok'"),
    ("deduplicated_generations", "deduplicated_generations", True, ""),
    ("quality_passed", "quality_scores", True, "passed"),
    ("training_examples", "training_examples", True, ""),
]


def stage_counts(catalog_path: Location, teacher_model: str) -> dict[str, int]:
    """Rows per stage (missing tables count as 0)."""
    counts: dict[str, int] = {}
    with connect(catalog_path, read_only=True) as con:
        for stage, table, partitioned, condition in _STAGES:
            if not table_exists(con, table):
                counts[stage] = 0
                continue
            conditions = [c for c in (condition, "teacher_model = ?" if partitioned else "") if c]
            where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
            params = [teacher_model] if partitioned else []
            counts[stage] = int(con.execute(f'SELECT count(*) FROM "{table}" {where}', params).fetchone()[0])
    return counts


def drops_by_reason(catalog_path: Location, teacher_model: str) -> dict[str, dict[str, int]]:
    """Dropped rows per stage and reason: rejects, prompt drops, generation drops, failed quality rules."""
    queries = {
        "raw_prompts": ("rejects", "SELECT reason, count(*) FROM rejects WHERE stage = 'raw_prompts' GROUP BY 1", []),
        "prompt_pool": ("prompt_drops", "SELECT reason, count(*) FROM prompt_drops GROUP BY 1", []),
        "deduplicated_generations": (
            "generation_drops",
            "SELECT reason, count(*) FROM generation_drops WHERE teacher_model = ? GROUP BY 1",
            [teacher_model],
        ),
        "quality_scores": (
            "quality_scores",
            "SELECT rule, count(*) FROM (SELECT unnest(failed_rules) AS rule FROM quality_scores "
            "WHERE teacher_model = ? AND NOT passed) GROUP BY 1",
            [teacher_model],
        ),
    }
    result: dict[str, dict[str, int]] = {}
    with connect(catalog_path, read_only=True) as con:
        for stage, (table, sql, params) in queries.items():
            if table_exists(con, table):
                result[stage] = {str(k): int(v) for k, v in con.execute(sql, params).fetchall()}
            else:
                result[stage] = {}
    return result
