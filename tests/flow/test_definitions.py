"""The shape of the Dagster definitions, pinned as a snapshot (as Dagster's own data platform does).

Protects: the asset keys, their groups, kinds, owners and partitioning, every asset check with
its blocking flag, the jobs and what they select, the schedule and the sensor with their jobs and
default status. A change to any of them is deliberate: the test fails with the new snapshot
written beside the old one (``definitions_snapshot.actual.json``) to review and copy over.
"""

from __future__ import annotations

import json
from pathlib import Path

from distillset.settings import load_settings
from orchestration.definitions import build_definitions

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def _shape() -> dict:
    defs = build_definitions(load_settings({}))
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "partitioned": node.partitions_def is not None,
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "has_description": bool(node.description),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": spec.blocking}
    jobs = {}
    for name in ("distill_job", "judge_job"):
        job = defs.resolve_job_def(name)
        jobs[name] = sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
    schedules = {
        s.name: {
            "job": s.job_name,
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "status": s.default_status.value,
        }
        for s in defs.schedules
    }
    sensors = {
        s.name: {
            "job": s.job_name if s.targets else None,
            "status": s.default_status.value,
            "interval_s": s.minimum_interval_seconds,
        }
        for s in defs.sensors
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_the_definitions_match_the_snapshot():
    actual = _shape()
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    if actual != expected:
        SNAPSHOT.with_name("definitions_snapshot.actual.json").write_text(
            json.dumps(actual, indent=2, sort_keys=True) + "\n"
        )
    assert actual == expected, (
        f"the definitions changed: review {SNAPSHOT.with_name('definitions_snapshot.actual.json')}"
    )


def test_every_asset_has_a_group_kinds_owners_and_a_description():
    for name, asset in _shape()["assets"].items():
        assert asset["group"] and asset["kinds"] and asset["owners"] and asset["has_description"], name


def test_the_readme_says_which_checks_block():
    """The README's "Which checks block" table is the definitions' own, check by check."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = {}
    for line in readme.split("### Which checks block", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2] in ("yes", "no"):
            table[f"{cells[1]}:{cells[0]}"] = {"blocking": cells[2] == "yes"}
    assert table == _shape()["checks"]
