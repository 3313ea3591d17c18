"""Issue 26: a run killed with SIGKILL leaves no build worker behind (they used to idle
for 5 minutes). A real `evo run` with TVM builds, a real SIGKILL, real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # gone meanwhile
        return ""


def test_build_workers_exit_within_seconds_of_a_sigkilled_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "evo", "run", "--model", "tiny",
                            "--population", "4", "--generations", "50", "--jobs", "2",
                            "--out", "r", "--cache", "r/c.sqlite", "--quiet"], cwd=tmp_path,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:  # until the search is under way, its two build workers at work
            assert run.poll() is None and time.monotonic() < deadline
            helpers = psutil.Process(run.pid).children(recursive=True)
            workers = [p for p in helpers if "LokyProcess" in command(p)]
            if len(workers) == 2 and (tmp_path / "r" / "run.sqlite").exists():
                break
            time.sleep(0.5)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        killed = time.monotonic()
        _, alive = psutil.wait_procs(helpers, timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
    left = [command(p) for p in alive if p.is_running()]
    for process in alive:  # a failing test leaves no orphans either
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert left == []
    assert time.monotonic() - killed < 10
