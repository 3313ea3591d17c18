"""The MetaSchedule baseline: a real (tiny) tuning in a child process, then reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo.bench.metaschedule import LIBRARY, RECORD, metaschedule_end_to_end

MODEL = f"{Path(__file__).with_name('bench_nets.py')}:conv_net"
SHAPE = (1, 3, 8, 8)


@pytest.mark.slow
def test_tunes_checks_times_and_reuses_its_database(tmp_path):
    work = tmp_path / "ms"
    row, tuning = metaschedule_end_to_end(MODEL, SHAPE, work, trials=4, threads=1,
                                          timeout=600)
    assert row.ok, row.error
    assert row.agreement.matches and row.latency.median_ms > 0
    assert tuning.tasks >= 3 and tuning.measured >= 1 and not tuning.reused
    assert (work / LIBRARY).is_file() and (work / RECORD).is_file()
    assert list(work.glob("database_tuning_record.json"))

    again, reused = metaschedule_end_to_end(MODEL, SHAPE, work, trials=4, threads=1,
                                            timeout=600)
    assert again.ok, again.error
    assert reused.reused and reused.measured == tuning.measured


def test_a_failing_child_is_an_error_value(tmp_path):
    row, tuning = metaschedule_end_to_end("no_such_model", SHAPE, tmp_path, trials=1,
                                          timeout=120)
    assert tuning is None and row.latency is None
    assert "MetaSchedule" in row.error and "no_such_model" in row.error
