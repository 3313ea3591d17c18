"""`benchmarks.checkpoint`: a run folder archived while its search writes it restores to a
consistent run that `evo status` reads and `evo resume` continues (real processes)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks import checkpoint
from evo.analysis.snapshot import load_run

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _generations(folder: Path) -> int:
    try:
        with sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_running_search_archived_restores_and_resumes(tmp_path: Path) -> None:
    run, log = tmp_path / "live", tmp_path / "live.log"
    log.write_text("generation 0: ...\n")
    search = subprocess.Popen(
        [sys.executable, "-m", "evo", "run", "--model", "tiny", "--evaluator", "analytic",
         "--population", "8", "--generations", "100000", "--out", str(run),
         "--cache", str(run / "measurements.sqlite"), "--quiet"],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _generations(run) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _generations(run) >= 3, "the search did not get going"
        (run / "bench").mkdir()
        (run / "bench" / "network.so").write_bytes(b"\x7fELF")  # rebuilt, not archived
        (run / "bench" / "database_workload.json").write_text("{}\n")
        archive = tmp_path / "out" / "live.tar.xz"
        stored_before = _generations(run) - 1  # the last generation stored before archiving
        members = checkpoint.checkpoint([run, log], archive)
        assert search.poll() is None  # archived while the search was still writing
    finally:
        search.send_signal(signal.SIGINT)
        search.wait(timeout=120)
    assert "live.log" in members and "live/config.json" in members
    assert "live/run.sqlite" in members and "live/measurements.sqlite" in members
    assert "live/bench/database_workload.json" in members
    assert not any(m.endswith(("-wal", "-shm", "/lock", ".so")) for m in members)

    restored = tmp_path / "restored"
    with tarfile.open(archive) as tar:
        tar.extractall(restored, filter="data")
    copy = restored / "live"
    with sqlite3.connect(copy / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    snap, original = load_run(copy), load_run(run)
    assert stored_before <= snap.last.generation <= original.last.generation
    kept = original.checkpoints[snap.last.generation]
    assert snap.last.population == kept.population and snap.last.best == kept.best
    assert set(snap.individuals) <= set(original.individuals)
    assert (restored / "live.log").read_text() == log.read_text()

    done = subprocess.run([sys.executable, "-m", "evo", "resume", str(copy), "--generations",
                           "1", "--quiet"], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_run(copy).last.generation == snap.last.generation + 1


def test_bad_arguments_exit_two(tmp_path: Path, capsys) -> None:
    assert checkpoint.main([str(tmp_path / "nope"), str(tmp_path / "a.tar.xz")]) == 2
    assert "nope" in capsys.readouterr().err
    assert checkpoint.main([str(tmp_path)]) == 2
    assert checkpoint.main([str(tmp_path), str(tmp_path / "a.zip")]) == 2
    assert not (tmp_path / "a.tar.xz").exists()
