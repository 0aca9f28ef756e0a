"""The wheel: an installed distillset works outside the checkout.

Protects: the built wheel carries the SQL files and the shipped data inside the package, and the
engine, imported from the wheel with no checkout beside it, finds them (the quality SQL loads,
the sample prompts and benchmarks are there, the shipped refusal patterns read).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

from hatchling.builders.wheel import WheelBuilder

from helpers.paths import PROJECT


def test_the_wheel_carries_sql_and_data_and_the_engine_finds_them(tmp_path):
    wheel = next(WheelBuilder(str(PROJECT)).build(directory=str(tmp_path / "dist"), versions=["standard"]))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "distillset/_bundled/sql/quality/score.sql" in names
        assert "distillset/_bundled/data/sample_prompts/gsm8k_train_sample.jsonl" in names
        assert "distillset/publish/card_template.md" in names
        assert "distillset/_bundled/docs/engine.md" in names  # the UI's column descriptions
        archive.extractall(tmp_path / "site")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import distillset; assert distillset.__file__.startswith(sys.argv[1]), distillset.__file__\n"
        "from distillset.catalog import load_sql\n"
        "from distillset.settings.paths import DATA_DIR, SQL_DIR\n"
        "from distillset.quality.patterns import load_patterns\n"
        "assert '_bundled' in str(SQL_DIR) and '_bundled' in str(DATA_DIR)\n"
        "assert 'SELECT' in load_sql('quality/score').upper()\n"
        "assert (DATA_DIR / 'benchmarks' / 'gsm8k_test.jsonl').is_file()\n"
        "assert load_patterns().height > 10\n"
        "from distillset.columns import column_descriptions\n"
        "assert 'skipped' in column_descriptions('teacher_generations')['status']\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "site")], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
