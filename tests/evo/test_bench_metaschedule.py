"""The MetaSchedule baseline: a real (tiny) tuning in a child process, then reuse; a
tuning stopped by its time budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evo.bench.metaschedule import (
    LIBRARY,
    LOG,
    RECORD,
    UNBOUNDED_TRIALS,
    metaschedule_end_to_end,
)
from evo.bench.metaschedule_child import cost_model

NETS = Path(__file__).with_name("bench_nets.py")
MODEL, ONE_TASK = f"{NETS}:two_convs", f"{NETS}:one_conv"
SHAPE = (1, 3, 8, 8)


@pytest.mark.slow
def test_tunes_checks_times_and_reuses_its_database(tmp_path):
    work = tmp_path / "ms"
    row, tuning = metaschedule_end_to_end(MODEL, SHAPE, work, trials_per_task=1, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches and row.latency.median_ms > 0
    assert tuning.tasks == 2 and tuning.trials_per_task == 1
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


@pytest.mark.slow
def test_a_time_budget_stops_the_tuning_and_compiles_what_it_has(tmp_path):
    work = tmp_path / "ms"
    row, tuning = metaschedule_end_to_end(ONE_TASK, SHAPE, work, budget_s=5.0, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches
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
