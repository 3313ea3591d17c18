"""Ctrl-C again while a run stops: the session is still recorded as interrupted (not
left looking crashed), nothing prints a traceback, and the run resumes. A real
process in its own process group, as a shell's foreground job, and real signals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.evo.analytic_run import ENV

EVO = [sys.executable, "-m", "evo"]
ACKNOWLEDGED = "stopping after the candidates in flight"


def _wait(what, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert process.poll() is None, "the run ended before it was interrupted"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _generations(run: Path) -> int:
    try:
        with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
            count = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        db.close()
        return count
    except sqlite3.Error:  # not made yet
        return 0


def _sessions(run: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT ended_at, reason FROM sessions ORDER BY id").fetchall()
    db.close()
    return rows


@pytest.mark.slow
def test_ctrl_c_again_and_again_while_stopping_records_an_interrupted_session(
        tmp_path: Path) -> None:
    """After the first Ctrl-C is acknowledged, Ctrl-C every 10 ms until the process
    has gone: whether they land while the search stops, while its machinery closes,
    while the session is recorded or while Python exits, the session is ended as
    interrupted and the exit status is 130 (or death by SIGINT once everything is
    recorded, which a shell reports as 130 too)."""
    run, errors = tmp_path / "r", tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [*EVO, "run", "--model", "tiny", "--evaluator", "analytic", "--population", "4",
             "--generations", "100000", "--out", str(run), "--cache", str(tmp_path / "c.sqlite"),
             "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True)
    try:
        _wait(lambda: _generations(run) >= 2, process)
        os.killpg(process.pid, signal.SIGINT)
        _wait(lambda: ACKNOWLEDGED in errors.read_text(), process, 60)
        while process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGINT)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        out = process.stdout.read()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
    err = errors.read_text()
    (ended_at, reason), = _sessions(run)
    assert ended_at is not None and reason.startswith("interrupted ("), (reason, err)
    assert process.returncode in (130, -signal.SIGINT), err
    for sign in ("Traceback", "KeyboardInterrupt", "Exception ignored"):
        assert sign not in err, err
    assert f"resume with: evo resume {run}" in out
    status = subprocess.run([*EVO, "status", str(run)], env=ENV, capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0 and "crashed" not in status.stdout, status.stdout
    resumed = subprocess.run([*EVO, "resume", str(run), "--generations", "1", "--quiet"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _sessions(run)[-1][1] == "completed"
