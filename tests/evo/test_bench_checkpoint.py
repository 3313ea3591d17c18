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
from evo.search.config import RunConfig

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

    assert load_run(copy).config.cache == "{run}/measurements.sqlite"  # moves with the run
    original_rows = _measurements(run / "measurements.sqlite")
    assert _measurements(copy / "measurements.sqlite") > 0  # the cache came along
    # emptied, so the next generation's measurements must land somewhere: a generation
    # of a long search can be served entirely from a full cache
    with sqlite3.connect(copy / "measurements.sqlite") as db:
        db.execute("DELETE FROM measurements")
    done = subprocess.run([sys.executable, "-m", "evo", "resume", str(copy), "--generations",
                           "1", "--quiet"], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_run(copy).last.generation == snap.last.generation + 1
    # the copy measured into its own cache and left the original run's alone
    assert _measurements(copy / "measurements.sqlite") > 0
    assert _measurements(run / "measurements.sqlite") == original_rows


def _measurements(cache: Path) -> int:
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def test_bad_arguments_exit_two(tmp_path: Path, capsys) -> None:
    assert checkpoint.main([str(tmp_path / "nope"), str(tmp_path / "a.tar.xz")]) == 2
    assert "nope" in capsys.readouterr().err
    assert checkpoint.main([str(tmp_path)]) == 2
    assert checkpoint.main([str(tmp_path), str(tmp_path / "a.zip")]) == 2
    assert not (tmp_path / "a.tar.xz").exists()


def test_a_cache_in_the_run_folder_moves_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "r1"
    inside = RunConfig(cache=str(folder / "measurements.sqlite")).with_cache_in(folder)
    assert inside.cache == "{run}/measurements.sqlite"
    moved = tmp_path / "elsewhere" / "r1"
    assert inside.cache_path(moved) == str(moved / "measurements.sqlite")
    shared = RunConfig(cache=str(tmp_path / "shared.sqlite"))
    assert shared.with_cache_in(folder) == shared  # outside the folder: shared, kept
    assert shared.cache_path(moved) == str(tmp_path / "shared.sqlite")
    assert RunConfig().with_cache_in(folder).cache_path(folder) is None  # the default


def test_an_absolute_cache_of_a_moved_run_resolves_to_its_own(tmp_path: Path) -> None:
    """Runs written before `{run}` recorded their own cache by absolute path."""
    old = RunConfig(cache=str(tmp_path / "gone" / "search" / "measurements.sqlite"))
    moved = tmp_path / "restored" / "search"
    moved.mkdir(parents=True)
    assert old.cache_path(moved) == old.cache  # no cache of its own: the recorded one
    (moved / "measurements.sqlite").write_bytes(b"")
    assert old.cache_path(moved) == str(moved / "measurements.sqlite")
    other = tmp_path / "restored" / "program-only"  # another folder's name: not its cache
    other.mkdir()
    (other / "measurements.sqlite").write_bytes(b"")
    assert old.cache_path(other) == old.cache
