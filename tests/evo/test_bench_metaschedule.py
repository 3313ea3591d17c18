"""The MetaSchedule baseline: a real (tiny) tuning in a child process, then reuse; a
tuning stopped by its time budget."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evo.bench.metaschedule import (
    LIBRARY,
    LOG,
    PROGRESS,
    RECORD,
    UNBOUNDED_TRIALS,
    metaschedule_end_to_end,
)
from evo.bench.metaschedule_child import cost_model

NETS = Path(__file__).with_name("bench_nets.py")
MODEL, ONE_TASK = f"{NETS}:conv_net", f"{NETS}:one_conv"
SHAPE = (1, 3, 8, 8)


@pytest.mark.slow
def test_tunes_checks_times_and_reuses_its_database(tmp_path, capsys):
    work = tmp_path / "ms"
    row, tuning = metaschedule_end_to_end(MODEL, SHAPE, work, trials_per_task=1, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches and row.latency.median_ms > 0
    assert tuning.tasks == 4 and tuning.trials_per_task == 1
    assert tuning.trials == tuning.tasks and 1 <= tuning.measured <= tuning.trials
    assert tuning.stopped == "trials" and tuning.budget_s is None and not tuning.reused
    assert tuning.cost_model == cost_model() == "xgb"  # the bench extra installs xgboost
    assert tuning.seconds > 0
    assert (work / LIBRARY).is_file() and (work / RECORD).is_file()
    assert list(work.glob("database_tuning_record.json"))

    again, reused = metaschedule_end_to_end(MODEL, SHAPE, work, trials_per_task=1, threads=1)
    assert again.ok, again.error
    assert reused.reused and reused.measured == tuning.measured
    assert reused.seconds == tuning.seconds  # the tuning that made the database
    per_conv_matches_kernels_by_workload(tmp_path, work, capsys)


def per_conv_matches_kernels_by_workload(tmp_path: Path, work: Path, capsys) -> None:
    """benchmarks.per_conv on a bench folder: this tuning as its MetaSchedule row, two
    quick (analytic) searches of the same network as its searches."""
    from benchmarks import per_conv
    from evo.cli import main

    bench = tmp_path / "bench"
    for name, extra in (("search", []), ("program-only", ["--program-only"])):
        assert main(["run", "--model", MODEL, "--input-shape", ",".join(map(str, SHAPE)),
                     "--evaluator", "analytic", "--population", "4", "--generations", "1",
                     "--quiet", "--out", str(bench / name), *extra]) == 0
    assert per_conv.main([str(bench)]) == 2
    assert "no metaschedule/network.so" in capsys.readouterr().err
    work.rename(bench / "metaschedule")
    result = per_conv.compare(bench, threads=1)
    [row] = result["convs"]  # the conv's workload, found in both compilations
    assert row["shape"] == "3->8 8x8 k3 s1" and row["slots"] == ["conv"]
    assert row["program_only_ms"] > 0 and row["metaschedule_ms"] > 0
    assert row["onnxruntime_ms"] > 0 and result["latency_ms"]["onnxruntime"] > 0
    assert result["rest_ms"]["program_only"]["other"] > 0  # our ReLU runs on its own
    assert result["metaschedule"]["tasks"] == 4
    assert per_conv.main([str(bench), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "3->8 8x8 k3 s1" in table and "end to end (timed)" in table


@pytest.mark.slow
def test_a_time_budget_stops_the_tuning_and_compiles_what_it_has(tmp_path, monkeypatch):
    work = tmp_path / "ms"
    monkeypatch.setenv("EVO_TIMING_PROCESSES", "2")
    row, tuning = metaschedule_end_to_end(ONE_TASK, SHAPE, work, budget_s=5.0, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches
    assert row.latency.processes == 2  # its network.so, timed in fresh processes
    assert tuning.stopped == "time budget" and tuning.budget_s == 5.0
    assert tuning.trials_per_task == UNBOUNDED_TRIALS  # the budget alone limits it
    assert 5.0 <= tuning.seconds < 30.0
    assert tuning.measured <= tuning.trials
    key = json.loads((work / RECORD).read_text())["key"]
    assert "stopped" not in key  # a later call with the same budget reuses it
    again, reused = metaschedule_end_to_end(ONE_TASK, SHAPE, work, budget_s=5.0,
                                           threads=1)
    assert again.ok and reused.reused and reused.stopped == "time budget"


def test_a_failing_child_is_an_error_value(tmp_path):
    row, tuning = metaschedule_end_to_end("no_such_model", SHAPE, tmp_path, trials_per_task=1,
                                          timeout=120)
    assert tuning is None and row.latency is None
    assert "MetaSchedule" in row.error and "no_such_model" in row.error
    assert (tmp_path / LOG).is_file()


@pytest.mark.slow
def test_an_interrupted_budgeted_tuning_resumes_with_the_budget_left(tmp_path):
    """A tuning killed from outside (a session's end) keeps its database and seconds;
    the next call tunes only for what is left of the budget."""
    work = tmp_path / "ms"
    parent = _tuning_in_a_child(work, 30.0)
    _wait_for_progress(work, parent, 5.0)
    subprocess.run(["pkill", "-9", "-f", str(work)], check=False)  # parent and child
    parent.wait()
    before = json.loads((work / PROGRESS).read_text())["seconds"]
    assert not (work / RECORD).exists()

    row, tuning = metaschedule_end_to_end(ONE_TASK, SHAPE, work, budget_s=30.0, threads=1)
    assert row.ok, row.error
    assert tuning.stopped == "time budget" and tuning.resumed_s == before
    assert 30.0 <= tuning.seconds < 30.0 + 15.0  # the budget, not the budget again
    assert not (work / PROGRESS).exists()


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_background_tuning_and_its_child(tmp_path, stop):
    """Started as a shell starts a background job (SIGINT ignored), the tuning still
    stops on SIGINT or SIGTERM: its child process group is killed, not left tuning,
    and the seconds tuned are recorded for the resumed call."""
    work = tmp_path / "ms"
    parent = _tuning_in_a_child(work, 60.0, stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    seconds = _wait_for_progress(work, parent, 2.0)
    parent.send_signal(getattr(signal, stop))
    assert parent.wait(timeout=60) != 0
    left = subprocess.run(["pgrep", "-f", f"metaschedule_child {work}"],
                          capture_output=True, text=True).stdout.split()
    assert left == [], "the tuning child outlived its parent"
    assert json.loads((work / PROGRESS).read_text())["seconds"] >= seconds
    assert not (work / RECORD).exists()


def _tuning_in_a_child(work: Path, budget_s: float, **popen) -> subprocess.Popen:
    """A process that tunes ONE_TASK into `work` for `budget_s`, reporting its progress
    every second."""
    code = ("import evo.bench.metaschedule as m; m.PROGRESS_EVERY_S = 1.0; "
            f"m.metaschedule_end_to_end({ONE_TASK!r}, {SHAPE!r}, {str(work)!r}, "
            f"budget_s={budget_s!r}, threads=1)")
    return subprocess.Popen([sys.executable, "-c", code], **popen)


def _wait_for_progress(work: Path, parent: subprocess.Popen, at_least_s: float) -> float:
    """The seconds tuned that `work`'s progress file reports, once at least `at_least_s`."""
    deadline, seconds = time.monotonic() + 600, 0.0
    while seconds < at_least_s and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.5)
        if (work / PROGRESS).is_file():
            seconds = json.loads((work / PROGRESS).read_text())["seconds"]
    assert seconds >= at_least_s, "the tuning never reported progress"
    return seconds
