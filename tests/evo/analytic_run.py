"""The run the issue's reproductions start from, made in a real process:
`evo run --model tiny --evaluator analytic --population 4 --generations 1 --out r
--cache r/c.sqlite --quiet`."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# A model file that leaves a mark next to itself when it is imported.
MARKING_MODEL = """from pathlib import Path

Path(__file__).with_name("imported").write_text("yes")

from evo.networks.tiny import tiny


def build():
    return tiny()
"""


def make_analytic_run(out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "evo", "run", "--model", "tiny",
                           "--evaluator", "analytic", "--population", "4", "--generations",
                           "1", "--out", str(out), "--cache", str(out / "c.sqlite"), "--quiet"],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def copy_run(made: Path, where: Path) -> Path:
    """A copy of the run folder `made` at `where` (as a received folder would be)."""
    shutil.copytree(made, where, symlinks=True)
    return where


def session_count(run: Path) -> int:
    with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
        count = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    db.close()
    return count
