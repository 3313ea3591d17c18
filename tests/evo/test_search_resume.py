"""Exact resume: a run killed with SIGKILL at random moments and resumed ends where
an uninterrupted run ends. Real processes, real signals, the analytic evaluator."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

EVO = [sys.executable, "-m", "evo"]
RUN_ARGS = ["--model", "tiny", "--evaluator", "analytic", "--population", "8",
            "--generations", "6", "--seed", "11", "--quiet"]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def _start(args: list[str], cache: Path) -> subprocess.Popen:
    return subprocess.Popen([*EVO, *args, "--cache", str(cache)] if args[0] == "run"
                            else [*EVO, *args], env=_env(cache), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _final_state(folder: Path) -> dict:
    """Everything that must match: every individual, the last population and best."""
    with sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True) as db:
        individuals = db.execute(
            "SELECT id, hash, generation, parents, operator FROM individuals ORDER BY id"
        ).fetchall()
        last = db.execute("SELECT generation, population, front, best FROM generations "
                          "ORDER BY generation DESC LIMIT 1").fetchone()
        latencies = db.execute("SELECT individual_id, latency_ms, fisher FROM evaluations "
                               "ORDER BY individual_id").fetchall()
    return {"individuals": individuals, "last": last, "latencies": latencies}


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    states, wall = [], 0.0
    for name in ("cold", "warm"):  # the second run finds the first's measurements cached,
        started = time.monotonic()  # as the killed run will: its time is the span to kill in
        done = subprocess.run([*EVO, "run", *RUN_ARGS, "--out", str(tmp_path / name),
                               "--cache", str(cache)], env=_env(cache), capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        wall = time.monotonic() - started
        states.append(_final_state(tmp_path / name))
    expected = states[1]
    assert states[0] == expected and expected["last"][0] == 6

    killed = tmp_path / "killed"
    rng = np.random.default_rng(0)
    command = ["run", *RUN_ARGS, "--out", str(killed)]
    kills = 0
    for _ in range(12):
        process = _start(command, cache)
        time.sleep(float(rng.uniform(0.3, 0.95)) * wall)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=60)
        if process.returncode == 0:
            break
        if (killed / "config.json").exists():  # else killed before the folder existed
            command = ["resume", str(killed), "--quiet"]
    else:
        final = subprocess.run([*EVO, "resume", str(killed), "--quiet"], env=_env(cache),
                               capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
    assert kills >= 1, "the run finished before it could be killed; lengthen it"
    assert _final_state(killed) == expected


@pytest.mark.slow
def test_sigint_checkpoints_and_prints_resume_command(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    folder = tmp_path / "run"
    args = ["--model", "tiny", "--evaluator", "analytic", "--population", "8",
            "--generations", "1000", "--quiet"]  # more generations than it will reach
    process = subprocess.Popen([*EVO, "run", *args, "--out", str(folder), "--cache",
                                str(cache)], env=_env(cache), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _wait_for_generation(folder, 1, process)
    second = subprocess.run([*EVO, "resume", str(folder)], env=_env(cache),
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert "being run by another process" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"evo resume {folder}" in out
    assert "Traceback" not in err
    assert "SIGINT: stopping after the candidates in flight; Ctrl-C again to stop now" in err
    with sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True) as db:
        reason = db.execute("SELECT reason FROM sessions ORDER BY id DESC").fetchone()[0]
        generations = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    assert reason == "interrupted (SIGINT)"
    assert generations >= 2


def _wait_for_generation(folder: Path, generation: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        db_path = folder / "run.sqlite"
        if db_path.exists():
            try:
                with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
                    row = db.execute("SELECT MAX(generation) FROM generations").fetchone()
                if row and row[0] is not None and row[0] >= generation:
                    return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.2)
    raise AssertionError("the run did not reach the generation in time")


def _children(pid: int) -> list[str]:
    """The command lines of `pid`'s child processes (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(line.split()[1] for line in status.read_text().splitlines()
                        if line.startswith("PPid:"))
            if int(ppid) == pid:
                found.append((status.parent / "cmdline").read_bytes().decode(errors="replace"))
        except (OSError, StopIteration, ValueError):
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["workers starting", "after a generation"])
def test_ctrl_c_at_a_terminal_stops_quietly_with_real_measurement(tmp_path: Path,
                                                                 moment: str) -> None:
    """A terminal's Ctrl-C signals its whole foreground process group. The build
    workers and the timing process are in groups of their own, so whenever it comes
    (even while the workers are still importing, or being started for the next
    generation) only the search gets it and stops at its safe point: exit code 130,
    no traceback from any process, no build recorded as failed by it."""
    cache = tmp_path / "cache.sqlite"
    folder = tmp_path / "run"
    process = subprocess.Popen(
        [*EVO, "run", "--model", "tiny", "--population", "4", "--generations", "1000",
         "--out", str(folder), "--cache", str(cache), "--quiet"],
        env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)  # its own process group, as a shell's foreground job
    try:
        if moment == "workers starting":
            deadline = time.monotonic() + 300
            while not any("popen_loky" in c for c in _children(process.pid)):
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
        else:
            _wait_for_generation(folder, 1, process)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    for sign in ("Traceback", "KeyboardInterrupt", "Exception ignored"):
        assert sign not in err, err
    if not (folder / "run.sqlite").exists():
        # stopped in the machinery check, before the folder was made: nothing to resume
        assert moment == "workers starting" and "nothing was written" in out, out
        assert not folder.exists()
        return
    assert f"evo resume {folder}" in out
    with sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True) as db:
        errors = [row[0] for row in db.execute("SELECT error FROM evaluations "
                                                "WHERE error IS NOT NULL")]
    assert not [e for e in errors if "pool" in e or "process" in e], errors
