"""Names shared by the asset modules."""

OWNERS = ["team:distillset"]

# Every asset that writes the DuckDB catalog runs in this pool; `orchestration/dagster.yaml` limits it to one
# slot, because DuckDB allows one writing process per file. The teacher stage is not in it: its long
# run writes the SQLite ledger, and the catalog only for a moment at the end (retried on lock).
CATALOG_POOL = "distillset_catalog"

# A run tagged `distillset/judge: on` (judge_job) pays the judge even when the judge resource is off.
JUDGE_TAG = "distillset/judge"

# Who launched a run (`orchestration/sensors.py`, `orchestration/run.py`); the release gate blocks only
# runs the new-release sensor launched.
LAUNCHED_BY_TAG = "distillset/launched_by"
RELEASE_SENSOR = "new_teacher_release_sensor"
