"""Best-of-N against the simulator on GSM8K prompts (issue 12, "Done means").

At N=4, k=1 and a 50%-accurate teacher: no wrong answer is published, at least 90% of prompts are
covered, about 2 samples are paid per prompt (early stop), a rerun pays nothing, raising N pays
only for prompts still lacking a verified answer, and a run killed with SIGKILL mid-sampling
resumes paying at most what was in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

from distillset.curation.best_of_n import SelectionPolicy, select_samples
from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation
from distillset.verify import VerifiableTask, verify_math
from helpers.paths import PROJECT

GSM8K = PROJECT / "data" / "sample_prompts" / "gsm8k_train_sample.jsonl"


def gsm8k(n: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:n] if n else rows


def _number(answer: str) -> str:
    return answer.rsplit("####", 1)[1].strip().replace(",", "")


def gsm8k_conversations(rows: list[dict]) -> list[Conversation]:
    # The task carries the GSM8K reference in its own form ("... #### 72").
    return [
        Conversation(f"q{i}", None, [row["question"]], task=VerifiableTask.math(row["answer"]))
        for i, row in enumerate(rows)
    ]


def answer_key(rows: list[dict]) -> dict[str, str]:
    return {row["question"]: _number(row["answer"]) for row in rows}


def _endpoint(sim: TeacherSimulator) -> TeacherEndpoint:
    return TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)


def _settings(n: int, k: int = 1, **kwargs) -> TeacherSettings:
    return TeacherSettings(samples_per_prompt=n, max_answers_per_prompt=k, max_concurrency=16, **kwargs)


def _select(samples: pl.DataFrame, rows: list[dict], n: int, k: int = 1, **policy):
    prompts = pl.DataFrame(
        {
            "prompt_id": [f"q{i}" for i in range(len(rows))],
            "prompt_text": [r["question"] for r in rows],
            "reference": [_number(r["answer"]) for r in rows],
        }
    )
    return select_samples(samples, prompts, SelectionPolicy(samples_per_prompt=n, max_answers_per_prompt=k, **policy))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return gsm8k()


def test_n4_k1_half_right_teacher_publishes_only_verified_answers(tmp_path, rows):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator(answer_key=answer_key(rows), accuracy=0.5) as sim:
        first = generate(gsm8k_conversations(rows), _settings(4), _endpoint(sim), ledger)
        paid_first = sim.stats()["completions"]
        rerun = generate(gsm8k_conversations(rows), _settings(4), _endpoint(sim), ledger)
        paid_rerun = sim.stats()["completions"] - paid_first
    samples = first.generations
    selection = _select(samples, rows, 4)
    kept = selection.generations.filter(pl.col("status") == "ok")
    # No wrong answer is published: each kept answer re-verified independently.
    by_id = {f"q{i}": row["answer"] for i, row in enumerate(rows)}
    for prompt_id, response in kept.select("prompt_id", "response").iter_rows():
        assert verify_math(response, by_id[prompt_id]).passed, (prompt_id, response)
    assert kept["prompt_id"].n_unique() == kept.height  # k = 1
    coverage = kept.height / len(rows)
    assert coverage >= 0.9, coverage
    assert selection.summary["coverage"] == pytest.approx(coverage, abs=1e-3)
    # Early stop: 1 + 1/2 + 1/4 + 1/8 = 1.875 expected samples per prompt, not 4.
    per_prompt = paid_first / len(rows)
    assert 1.6 <= per_prompt <= 2.2, per_prompt
    assert samples.height == paid_first
    assert selection.summary["samples_paid_per_prompt"] == pytest.approx(per_prompt, abs=1e-3)
    # Sample i > 0 is its own request: a sample index in the ledger key.
    assert samples["request_hash"].n_unique() == samples.height
    assert set(samples["sample_index"].unique().to_list()) <= {0, 1, 2, 3}
    # A rerun pays nothing and finds the same samples.
    assert paid_rerun == 0 and rerun.stats.requests_paid == 0
    assert rerun.generations["request_hash"].to_list() == samples["request_hash"].to_list()
    # Every sample not kept says why; a prompt with nothing kept is an `unverified` row.
    dropped = selection.samples.filter(~pl.col("kept"))
    assert dropped["drop_reason"].null_count() == 0
    assert set(dropped["drop_reason"].unique().to_list()) <= {"wrong", "unverifiable", "truncated"}
    unverified = selection.generations.filter(pl.col("status") == "unverified")
    assert unverified.height == len(rows) - kept.height
    assert unverified["error"].str.contains("none of 4 sample").all()


def test_wrong_answers_mention_the_right_number_and_are_not_published(tmp_path, rows):
    subset = rows[:30]
    with TeacherSimulator(answer_key=answer_key(subset), accuracy=0.0) as sim:
        result = generate(gsm8k_conversations(subset), _settings(2), _endpoint(sim), Ledger(tmp_path / "l.sqlite"))
    samples = result.generations.filter(pl.col("status") == "ok")
    assert (samples["verdict"] != "correct").all()
    mentions = [
        _number(row["answer"]) in response
        for row, response in zip(subset, samples.filter(pl.col("sample_index") == 0)["response"], strict=True)
    ]
    assert sum(mentions) >= 20  # the right number appears mid-way in wrong answers
    selection = _select(result.generations, subset, 2)
    assert selection.generations.filter(pl.col("status") == "ok").is_empty()
    assert selection.summary["coverage"] == 0.0


def test_raising_n_pays_only_for_prompts_still_lacking_a_verified_answer(tmp_path, rows):
    subset = rows[:120]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator(answer_key=answer_key(subset), accuracy=0.3) as sim:
        four = generate(gsm8k_conversations(subset), _settings(4), _endpoint(sim), ledger)
        before = dict(sim.stats()["completions_by_hash"])
        six = generate(gsm8k_conversations(subset), _settings(6), _endpoint(sim), ledger)
        after = sim.stats()["completions_by_hash"]
    lacking = set(
        four.generations.group_by("prompt_id")
        .agg((pl.col("verdict") == "correct").any().alias("ok"))
        .filter(~pl.col("ok"))["prompt_id"]
        .to_list()
    )
    assert lacking, "at 30% accuracy some prompts have no correct answer in 4 samples"
    new_hashes = {h for h in after if h not in before}
    assert all(n == 1 for n in after.values())  # nothing paid twice
    new_rows = six.generations.filter(pl.col("request_hash").is_in(list(new_hashes)))
    assert new_rows.height == len(new_hashes) == six.stats.requests_paid
    assert set(new_rows["prompt_id"].to_list()) <= lacking
    assert (new_rows["sample_index"] >= 4).all()
    assert len(new_hashes) <= 2 * len(lacking)


def test_without_verifier_all_n_samples_are_drawn_and_the_best_ranked_one_kept(tmp_path):
    convs = [Conversation(f"p{i}", None, [f"Describe mountain range number {i} in detail."]) for i in range(10)]
    with TeacherSimulator() as sim:
        result = generate(convs, _settings(3), _endpoint(sim), Ledger(tmp_path / "l.sqlite"))
    assert result.generations.height == 30
    prompts = pl.DataFrame({"prompt_id": [c.prompt_id for c in convs], "prompt_text": [c.turns[0] for c in convs]})
    selection = select_samples(result.generations, prompts, SelectionPolicy(samples_per_prompt=3))
    assert selection.generations.height == 10
    assert set(selection.samples.filter(pl.col("kept"))["selection"].to_list()) == {"quality_rank"}
    for prompt_id, group in selection.samples.group_by("prompt_id"):
        best = group.sort(["quality_score", "sample_index"], descending=[True, False]).row(0, named=True)
        assert best["kept"], prompt_id
        assert set(group.filter(~pl.col("kept"))["drop_reason"].to_list()) <= {"ranked_below", "truncated"}


def test_k2_keeps_two_verified_answers_and_stops_there(tmp_path, rows):
    subset = rows[:40]
    with TeacherSimulator(answer_key=answer_key(subset), accuracy=0.9) as sim:
        result = generate(gsm8k_conversations(subset), _settings(6, k=2), _endpoint(sim), Ledger(tmp_path / "l.sqlite"))
    correct = result.generations.group_by("prompt_id").agg((pl.col("verdict") == "correct").sum().alias("c"))
    assert (correct["c"] <= 2).all()
    # At 90% accuracy most prompts need exactly the 2 samples of the first round.
    assert result.generations.height < 40 * 3
    selection = _select(result.generations, subset, 6, k=2)
    kept = selection.generations.filter(pl.col("status") == "ok")
    assert kept.group_by("prompt_id").len()["len"].max() == 2


def test_pass_rate_window_draws_all_n_and_keeps_only_prompts_inside(tmp_path, rows):
    subset = rows[:40]
    settings = _settings(4, pass_rate_min=0.1, pass_rate_max=0.6)
    with TeacherSimulator(answer_key=answer_key(subset), accuracy=0.5) as sim:
        result = generate(gsm8k_conversations(subset), settings, _endpoint(sim), Ledger(tmp_path / "l.sqlite"))
    assert result.generations.height == 160  # no early stop: the pass rate needs all N
    selection = _select(result.generations, subset, 4, pass_rate_min=0.1, pass_rate_max=0.6)
    rates = selection.pass_rates
    inside = set(rates.filter(pl.col("pass_rate").is_between(0.1, 0.6))["prompt_id"].to_list())
    kept = set(selection.generations.filter(pl.col("status") == "ok")["prompt_id"].to_list())
    assert kept == inside and inside
    outside = selection.generations.filter(pl.col("status") == "out_of_window")
    assert outside.height == 40 - len(inside)
    assert sum(selection.summary["pass_rate_histogram"].values()) == 40


_KILLED_RUN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {project!r})
    sys.path.insert(0, {tests!r})
    from distillset.settings import TeacherSettings
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.generate import generate
    from distillset.teacher.ledger import Ledger
    from unit.teacher.test_best_of_n import gsm8k, gsm8k_conversations
    endpoint = TeacherEndpoint(base_url={base_url!r}, api_key=None, simulated=True)
    settings = TeacherSettings(samples_per_prompt=4, max_concurrency={concurrency})
    generate(gsm8k_conversations(gsm8k()), settings, endpoint, Ledger({ledger!r}))
    print("finished", flush=True)
    """
)


def test_killed_mid_sampling_resumes_paying_at_most_what_was_in_flight(tmp_path, rows):
    concurrency, commit_lag = 8, 8
    ledger_path = tmp_path / "ledger.sqlite"
    with TeacherSimulator(answer_key=answer_key(rows), accuracy=0.5, latency_s=0.05) as sim:
        # The reference run: what an uninterrupted run pays (same deterministic answers).
        reference = generate(gsm8k_conversations(rows), _settings(4), _endpoint(sim), Ledger(tmp_path / "ref.sqlite"))
        full = sim.stats()["completions"]
        script = _KILLED_RUN_SCRIPT.format(
            project=str(PROJECT),
            tests=str(PROJECT / "tests"),
            base_url=sim.base_url,
            concurrency=concurrency,
            ledger=str(ledger_path),
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while sim.stats()["completions"] < full + 150 and time.monotonic() < deadline:
            assert child.poll() is None, "the run finished before it could be killed"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        paid_killed = sim.stats()["completions"] - full
        assert paid_killed < full
        ledger = Ledger(ledger_path)
        assert ledger.count_answers() >= paid_killed - concurrency - commit_lag
        resumed = generate(gsm8k_conversations(rows), _settings(4), _endpoint(sim), ledger)
        total = sim.stats()["completions"] - full
    assert resumed.generations["request_hash"].to_list() == reference.generations["request_hash"].to_list()
    assert total <= full + concurrency + commit_lag


def test_code_prompts_are_verified_in_the_sandbox_as_samples_arrive(tmp_path):
    # The simulator does not write MBPP solutions: every sample is checked in the sandbox and fails.
    mbpp = PROJECT / "data" / "code_tasks" / "mbpp_train_sample.jsonl"
    tasks = [json.loads(line) for line in mbpp.read_text(encoding="utf-8").splitlines()[:4]]
    convs = [
        Conversation(f"c{i}", None, [t["text"]], task=VerifiableTask.mbpp(t["test_list"], t["test_setup_code"]))
        for i, t in enumerate(tasks)
    ]
    with TeacherSimulator() as sim:
        result = generate(convs, _settings(2), _endpoint(sim), Ledger(tmp_path / "l.sqlite"))
    rows = result.generations
    assert rows.height == 8  # nothing passed, so both samples of every prompt were drawn
    assert set(rows["verifier"].to_list()) == {"code"}
    assert set(rows["verdict_reason"].to_list()) <= {"no_code_block", "tests_failed", "syntax_error"}
    prompts = pl.DataFrame({"prompt_id": [c.prompt_id for c in convs], "prompt_text": [t["text"] for t in tasks]})
    selection = select_samples(rows, prompts, SelectionPolicy(samples_per_prompt=2))
    assert selection.generations["status"].to_list() == ["unverified"] * 4
