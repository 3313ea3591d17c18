"""How `evo bench` follows its MetaSchedule child: real child processes that write as
MetaSchedule does (its XGBoost cost model logs to stdout several times a second)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest

from evo.bench import metaschedule
from evo.bench.metaschedule import MARKER, supervise

CHATTY = f"""
import time
print("setting up", flush=True)
print("{MARKER} tuning", flush=True)
while True:
    print("[DEBUG] XGB iter", flush=True)
    time.sleep(0.01)
"""


def start(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_a_chatty_tuning_reports_progress_and_stops_at_its_budget(monkeypatch) -> None:
    monkeypatch.setattr(metaschedule, "PROGRESS_EVERY_S", 0.2)
    reported: list[float] = []
    child = start(CHATTY)
    began = time.monotonic()
    outcome, seconds = supervise(child, budget_s=1.5, timeout=60.0, report=reported.append)
    assert outcome == "budget" and 1.5 <= seconds < 1.5 + 1.0
    assert time.monotonic() - began < 30.0
    assert child.poll() is not None  # killed
    assert len(reported) >= 4, reported  # however much it writes, progress is written
    assert reported == sorted(reported) and reported[0] == pytest.approx(0.2, abs=0.15)
    assert reported[-1] <= seconds


def test_a_child_that_finishes_has_exited_and_one_that_hangs_times_out() -> None:
    done = start(f"print('{MARKER} tuning', flush=True); print('{MARKER} tuned', flush=True)")
    assert supervise(done, budget_s=30.0, timeout=60.0) == ("exited", None)
    assert done.returncode == 0
    hung = start("import time; print('loading', flush=True); time.sleep(60)")
    outcome, error = supervise(hung, budget_s=30.0, timeout=1.0)
    assert outcome == "error" and error == "no result within 1 s (setup)"
    assert hung.poll() is not None


def test_ctrl_c_kills_the_tuning_and_reports_how_far_it_got(tmp_path) -> None:
    """What a session's end does to `evo bench` (SIGINT): the tuning child dies and the
    seconds tuned are reported once more, for the resumed tuning to go on from."""
    import os
    import signal

    seconds = tmp_path / "seconds"
    # Ctrl-C raises KeyboardInterrupt in the parent as it does in `evo bench`, even when
    # the suite runs as a background job, which starts with SIGINT ignored.
    code = f"""
import signal, subprocess, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from evo.bench import metaschedule as m
m.PROGRESS_EVERY_S = 600.0  # only the interruption reports
child = subprocess.Popen([sys.executable, "-c", {CHATTY!r}], stdout=subprocess.PIPE,
                         text=True, start_new_session=True)
print(child.pid, flush=True)
def report(s):
    with open({str(seconds)!r}, "a") as f:
        f.write(f"{{s}}\\n")
m.supervise(child, 600.0, 60.0, report)
"""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    time.sleep(2.0)
    parent.send_signal(signal.SIGINT)
    try:
        _, err = parent.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # leave no process behind, then fail
        for victim in (parent.pid, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        parent.communicate()
        pytest.fail("the parent ignored Ctrl-C for 60 s")
    assert parent.returncode != 0 and "KeyboardInterrupt" in err
    try:
        os.kill(pid, 0)
        alive = True
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        alive = False
    assert not alive, "the tuning child outlived the interruption"
    [line] = seconds.read_text().splitlines()
    assert 0.5 < float(line) < 60.0
