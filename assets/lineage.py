"""Column lineage of the product tables (``dagster/column_lineage``): which upstream column each comes from.

An auditor reading ``training_examples`` in the UI follows a column back to the table it was copied
or computed from (the per-row chain is ``distillset explain <example_id>``). Kept in one place so
``training_examples`` and ``training_set`` (the same rows, published) say the same thing.
"""

import dagster as dg

# column -> the (asset, column) pairs it is built from, as docs/engine.md's training_examples table says.
_SOURCES: dict[str, list[tuple[str, str]]] = {
    "prompt_id": [("raw_prompts", "prompt_id")],
    "source_file": [("raw_prompts", "source_file")],
    "source_line": [("raw_prompts", "source_line")],
    "source_sha256": [("raw_prompts", "source_sha256")],
    "license": [("raw_prompts", "license")],
    "text_hash": [("raw_prompts", "text_hash")],
    "split": [("raw_prompts", "text_hash")],
    "example_id": [("raw_prompts", "prompt_id"), ("teacher_generations", "request_hash")],
    "teacher_model": [("teacher_generations", "teacher_model")],
    "messages_json": [("teacher_generations", "messages_json"), ("teacher_generations", "response")],
    "request_hash": [("teacher_generations", "request_hash")],
    "generated_at": [("teacher_generations", "generated_at")],
    "served_model": [("teacher_generations", "served_model")],
    "simulated": [("teacher_generations", "simulated")],
    "teacher_origin": [("teacher_generations", "simulated")],
    "quality_score": [("quality_scores", "score"), ("judge_scores", "judge_score")],
    "cluster_id": [("deduplicated_generations", "cluster_id")],
}


def training_examples_lineage() -> dg.TableColumnLineage:
    """The column lineage of ``training_examples`` (and of ``training_set``, its published rows)."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=dg.AssetKey(asset), column_name=name) for asset, name in sources]
            for column, sources in _SOURCES.items()
        }
    )


def lineage_metadata() -> dict[str, dg.TableColumnLineage]:
    """The ``dagster/column_lineage`` entry, for an asset's definition and its materializations."""
    return {"dagster/column_lineage": training_examples_lineage()}
