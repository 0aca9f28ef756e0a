"""A full disk loses no paid answer: the ledger on a real, tiny tmpfs that fills up mid-run.

Protects: when the ledger's disk fills during generation, the stage stops with "no space left on
device at <folder>"; every answer the client had received is either committed or spilled to
another filesystem (none lost, none only in a 0-byte file beside the ledger); once there is space
again, the next ledger commits the spilled answers first and a rerun pays only for what was never
received.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from distillset.settings import SamplingSettings, TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher import spill
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation

CONCURRENCY = 8


def _mount(folder: Path, size: str, *, remount: bool = False) -> bool:
    options = f"remount,size={size}" if remount else f"size={size}"
    args = ["mount", "-o", options, folder] if remount else ["mount", "-t", "tmpfs", "-o", options, "tmpfs", folder]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or not _mount(folder, "1m"):
        pytest.skip("needs root to mount a small tmpfs (CI and the development machines run as root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


def _conversations(n: int) -> list[Conversation]:
    topics = ("soil", "tides", "glaciers", "bridges", "markets", "vaccines", "compilers", "orchards")
    return [Conversation(f"p{i}", None, [f"Write a long essay about {topics[i % 8]} number {i}."]) for i in range(n)]


def test_a_full_disk_stops_the_stage_and_loses_no_paid_answer(small_disk):
    ledger_path = small_disk / "ledger.sqlite"
    n = 3000
    settings = TeacherSettings(max_concurrency=CONCURRENCY, sampling=SamplingSettings(max_tokens=2048))
    with TeacherSimulator() as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        with pytest.raises(RuntimeError, match=f"no space left on device at {small_disk}") as failure:
            generate(_conversations(n), settings, endpoint, Ledger(ledger_path))
        paid_before = sim.stats()["completions"]
        spilled = list(spill.spilled_files(ledger_path))
        try:
            assert 0 < paid_before < n
            assert spilled and all(f.stat().st_size > 0 for f in spilled), "the paid answers were spilled"
            assert not any(f.is_relative_to(small_disk) for f in spilled), "spilled on another filesystem"
            assert str(spilled[0]) in str(failure.value)
            spilled_rows = sum(len(spill.read_spilled(f)) for f in spilled)

            assert _mount(small_disk, "64m", remount=True)
            ledger = Ledger(ledger_path)  # commits the spilled answers first
            kept = ledger.count_answers()
            assert not list(spill.spilled_files(ledger_path))
            assert spilled_rows > 0 and kept >= paid_before - CONCURRENCY, (kept, spilled_rows, paid_before)

            result = generate(_conversations(n), settings, endpoint, ledger)
            assert result.stats.cache_hits == kept and result.stats.requests_paid == n - kept
            assert sim.stats()["completions"] <= n + CONCURRENCY
            assert ledger.count_answers() == n
        finally:
            for leftover in spill.spilled_files(ledger_path):
                leftover.unlink()
