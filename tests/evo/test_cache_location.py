"""The measurement cache's default place is per user, not per working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_default_cache_follows_evo_cache_not_the_working_directory(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVO_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "evo", "run", "--model", "tiny",
                           "--evaluator", "analytic", "--population", "4", "--generations",
                           "1", "--out", str(tmp_path / "r"), "--quiet"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (cache / "measurements.sqlite").is_file()
    assert list(work.iterdir()) == []  # no runs/.cache where the command ran


def test_without_evo_cache_it_is_under_xdg_cache_home(tmp_path: Path, monkeypatch) -> None:
    from evo.paths import default_measurement_cache

    monkeypatch.delenv("EVO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_measurement_cache() == str(tmp_path / "evo" / "measurements.sqlite")
