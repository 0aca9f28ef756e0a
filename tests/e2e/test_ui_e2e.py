"""The Dagster UI, end to end, in a real headless browser.

Protects: `dagster dev -w workspace.yaml` (what `make ui` runs) loads the project's definitions;
the asset graph shows every stage from raw_prompts to training_set; a user can launch the whole
flow for a registered teacher partition from the job page (Materialize all, pick the partition,
Launch 1 run); that run succeeds under the real daemon and multiprocess executor (embedded
teacher simulator, catalog pool of one slot), and publishes a training set version under
DISTILLSET_HOME; the nightly schedule and the release sensor are listed, both stopped until a user
turns them on. Screenshots (automation page, asset graph, launch dialog, succeeded run) are saved
to DISTILLSET_SCREENSHOT_DIR (or the test's tmp_path) for a human to look at.

Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`). It is the one slow test, by
nature: a real Dagster deployment starts (~30 s), then the run executes 19 steps (8 assets, 11
checks), each in its own subprocess; three to four minutes in all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from distillset.settings import DEFAULT_TEACHER_MODEL
from distillset.settings.paths import PROJECT_ROOT
from helpers.flow import ASSETS
from orchestration.run import INSTANCE_CONFIG

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STAGES = ASSETS
STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 600
# MT-Bench writing prompts: short, answered well by the simulator, so the run's quality gates pass
# and the test is about the UI path, not about quality tuning (tests/test_flow.py covers that).
PROMPT_LINES = 6

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium` "
        "(playwright cannot download browsers here)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (uv sync installs it)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("DISTILLSET_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _dagster_command() -> list[str]:
    executable = Path(sys.executable).parent / "dagster"
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "dagster"]


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A fresh DAGSTER_HOME and DISTILLSET_HOME, a few prompts, and the default teacher registered."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, dagster_home / "dagster.yaml")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    source = PROJECT_ROOT / "data" / "sample_prompts" / "mt_bench_questions.jsonl"
    lines = source.read_text(encoding="utf-8").splitlines()[:PROMPT_LINES]
    (prompts / source.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copyfile(source.with_name(source.name + ".license"), prompts / (source.name + ".license"))
    home = tmp_path / "distillset_home"
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DISTILLSET_HOME", str(home))
    monkeypatch.setenv("DISTILLSET_PROMPTS_URL", str(prompts))
    monkeypatch.setenv("DISTILLSET_SCORECARD_LIMIT", "10")  # the scorecard runs too, on a few questions
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("teacher_models", [DEFAULT_TEACHER_MODEL])
    return {"dagster_home": dagster_home, "home": home, "prompts": prompts, "lines": len(lines)}


@pytest.fixture
def dagster_dev(deployment, tmp_path):
    """`dagster dev` from the project root on a free loopback port; stopped with its whole group."""
    port = _free_port()
    log_path = tmp_path / "dagster_dev.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*_dagster_command(), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{base_url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer within {STARTUP_TIMEOUT_S}s:\n{_tail(log_path)}")
            time.sleep(1)
        yield {"base_url": base_url, "log": log_path}
    finally:
        _stop_group(process)
        print(f"dagster dev log: {log_path}")


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group (webserver, daemon, code servers, runs), SIGKILL what lingers."""
    pgid = process.pid  # start_new_session made the child its group's leader
    try:
        os.killpg(pgid, signal.SIGTERM)
        # `dagster dev` often outlives SIGTERM (it waits on its children); do not wait long.
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(timeout=10)


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _wait_for_run(instance, run_id_prefix: str, timeout_s: float):
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [
            r
            for r in instance.get_runs(filters=dg.RunsFilter(job_name="distill_job"))
            if r.run_id.startswith(run_id_prefix)
        ]
        if runs and runs[0].status in finished:
            return runs[0]
        time.sleep(2)
    pytest.fail(f"run {run_id_prefix} did not finish within {timeout_s}s")


def _failures(instance, run_id: str) -> str:
    lines = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE"):
            error = getattr(event.event_specific_data, "error", None)
            lines.append(f"{event.step_key or 'run'}: {error.message.strip() if error else event.message}")
    return "\n".join(lines)


def _dismiss_community_dialog(page) -> None:
    """A fresh instance greets the first visitor with a newsletter sign-up; skip it."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=15_000)
    except sync_api.TimeoutError:
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=10_000)


def test_materialize_the_whole_flow_from_the_ui(deployment, dagster_dev, tmp_path):
    base_url = dagster_dev["base_url"]
    shots = _screenshot_dir(tmp_path)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # Wide enough that the graph draws full asset names rather than abbreviations.
        page = browser.new_page(viewport={"width": 2400, "height": 1200})
        try:
            page.set_default_timeout(30_000)

            page.goto(f"{base_url}/automation")
            _dismiss_community_dialog(page)
            for name in ("nightly_refresh_schedule", "new_teacher_release_sensor", "stale_run_sensor"):
                sync_api.expect(page.get_by_text(name, exact=True)).to_be_visible()
            sync_api.expect(page.get_by_text("Scheduled At 02:00 AM UTC")).to_be_visible()
            # What pays ships stopped; only the housekeeping sensor (it launches nothing) runs.
            toggles = page.locator("input[type=checkbox]")
            assert toggles.count() >= 3
            assert sum(toggles.nth(i).is_checked() for i in range(toggles.count())) == 1
            expected_on = {
                "nightly_refresh_schedule": False,
                "new_teacher_release_sensor": False,
                "stale_run_sensor": True,
            }
            for name, on in expected_on.items():
                # The row: the nearest element around the name that holds checkboxes (selector, toggle).
                row = page.get_by_text(name, exact=True).locator("xpath=ancestor::*[.//input[@type='checkbox']][1]")
                assert row.locator("input[type=checkbox]").last.is_checked() is on, name
            page.screenshot(path=str(shots / "0_automation_stopped.png"))

            page.goto(f"{base_url}/asset-groups")
            materialize_all = page.get_by_role("button", name="Materialize all…")
            materialize_all.wait_for()
            graph_settings = page.get_by_role("img", name="settings", exact=True).last
            graph_settings.click()
            page.get_by_role("menuitem", name="Expand all groups").click()
            page.keyboard.press("Escape")
            page.screenshot(path=str(shots / "1_asset_graph.png"))
            # The graph shortens long names at this zoom ("teach…_generations"): the catalog lists
            # every asset by its whole name.
            page.goto(f"{base_url}/assets")
            for stage in STAGES:
                sync_api.expect(page.get_by_text(stage, exact=True).first).to_be_visible(timeout=30_000)

            page.goto(f"{base_url}/jobs")
            page.get_by_role("link", name="distill_job").first.click()
            page.get_by_role("button", name="Materialize all…").click()
            dialog = page.locator(".dagster-dialog[role=dialog]")
            sync_api.expect(dialog).to_contain_text(f"Launch runs to materialize {len(STAGES)} assets")
            dialog.get_by_text("Select a partition or create one").click()
            page.locator("span", has_text=DEFAULT_TEACHER_MODEL).first.click()
            dialog.get_by_text(f"Launch runs to materialize {len(STAGES)} assets").click()  # closes the partition list
            sync_api.expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
            launch = dialog.get_by_role("button", name="Launch 1 run")
            sync_api.expect(launch).to_be_enabled()
            sync_api.expect(dialog).to_contain_text("1 partition")
            page.screenshot(path=str(shots / "2_launch_dialog.png"))
            launch.click()

            toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
            toast.wait_for()
            run_id_prefix = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)

            with dg.DagsterInstance.get() as instance:
                run = _wait_for_run(instance, run_id_prefix, RUN_TIMEOUT_S)
                failures = _failures(instance, run.run_id)
                materialized = {
                    key.to_user_string()
                    for key in instance.get_asset_keys()
                    if instance.get_latest_materialization_event(key) is not None
                }

            page.goto(f"{base_url}/runs/{run.run_id}")
            sync_api.expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=60_000)
            sync_api.expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "3_run_succeeded.png"))

            # The audit path: one example, on the product table's page, with the source file it came
            # from and the teacher call (ledger request hash) that paid for it.
            import duckdb

            with duckdb.connect(str(deployment["home"] / "catalog.duckdb"), read_only=True) as con:
                example_id, source_file, request_hash = con.execute(
                    "SELECT example_id, source_file, request_hash FROM training_examples LIMIT 1"
                ).fetchone()
            partition = urllib.parse.quote(DEFAULT_TEACHER_MODEL, safe="")
            page.goto(f"{base_url}/assets/training_examples?partition={partition}")
            sync_api.expect(page.get_by_text("distillset explain").first).to_be_visible(timeout=60_000)
            page.get_by_text("preview", exact=True).first.scroll_into_view_if_needed()
            show = page.get_by_role("button", name=re.compile("show table", re.IGNORECASE))
            if show.count():
                show.first.click()
            sync_api.expect(page.get_by_text(request_hash).first).to_be_visible(timeout=30_000)
            sync_api.expect(page.get_by_text(example_id).first).to_be_visible()
            sync_api.expect(page.get_by_text(Path(source_file).name, exact=False).first).to_be_visible()
            page.screenshot(path=str(shots / "4_example_lineage.png"))
        except Exception:
            page.screenshot(path=str(shots / "failure.png"))
            print(f"page at failure ({page.url}):\n{page.inner_text('body')[:3000]}")
            raise
        finally:
            browser.close()
    print(f"screenshots: {shots}")

    assert run.status == dg.DagsterRunStatus.SUCCESS, f"the run failed:\n{failures}\n{_tail(dagster_dev['log'])}"
    assert run.tags.get("dagster/partition") == DEFAULT_TEACHER_MODEL
    # Launched from the UI, and the run list says so, with the teacher and the version it published.
    assert run.tags.get("distillset/launched_by") == "ui"
    assert run.tags.get("distillset/teacher") == DEFAULT_TEACHER_MODEL
    assert run.tags.get("distillset/version", "").endswith("v0001")
    assert materialized >= set(STAGES)

    manifests = sorted((deployment["home"] / "training_sets").glob("*/v*/manifest.json"))
    assert len(manifests) == 1, f"expected one published version, found {manifests}"
    version = manifests[0].parent
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    assert manifest["teacher"]["model"] == DEFAULT_TEACHER_MODEL
    assert manifest["teacher"]["simulated"] is True
    assert manifest["dagster_run_id"] == run.run_id
    examples = [
        json.loads(line)
        for name in ("train.jsonl", "validation.jsonl")
        for line in (version / name).read_text().splitlines()
    ]
    assert 0 < len(examples) <= deployment["lines"]
    assert all(example["messages"][-1]["role"] == "assistant" for example in examples)
    for name in (
        "0_automation_stopped.png",
        "1_asset_graph.png",
        "2_launch_dialog.png",
        "3_run_succeeded.png",
        "4_example_lineage.png",
    ):
        assert (shots / name).stat().st_size > 10_000
