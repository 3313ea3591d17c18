"""Runs record the machine each session ran on; a resume on another machine says so, and
`evo status` and `evo bench` show where the latencies were measured."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import tvm

from evo.analysis.snapshot import load_run
from evo.analysis.status import format_status, run_status
from evo.bench_report import format_table
from evo.host import describe_host, host_changes, same_host
from evo.store.run_store import RunStore
from evo.target import host_target_config

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_describe_host_is_this_machine() -> None:
    host = describe_host()
    assert host["cores"] == len(os.sched_getaffinity(0))
    assert host["mcpu"] == host_target_config().get("mcpu", "generic")
    assert host["tvm"] == tvm.__version__ and host["device"] == "local"
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    assert host["cpu"] in cpuinfo
    assert describe_host("rpc://10.0.0.1:9190/pi")["device"] == "rpc://10.0.0.1:9190/pi"


def test_host_changes_name_what_differs_and_ignore_the_hostname() -> None:
    host = describe_host()
    renamed = {**host, "hostname": "elsewhere"}
    assert same_host(host, renamed) and host_changes(host, renamed) == []
    moved = {**host, "mcpu": "znver9", "cores": host["cores"] + 2}
    changes = host_changes(host, moved)
    assert len(changes) == 2 and "znver9" in changes[0] and "cores" in changes[1]
    assert not same_host(host, moved)


def _downgrade_to_schema_1(path: Path) -> None:
    from tests.evo.old_store import write_old_store

    write_old_store(path.parent, schema=1)


def _schema(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]


def test_a_schema_1_store_is_read_as_is_and_upgraded_when_a_session_starts(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path)
    store.end_session(store.start_session(1, "evo run", describe_host()), "completed")
    store.close()
    _downgrade_to_schema_1(tmp_path / "run.sqlite")

    readonly = RunStore.open(tmp_path, readonly=True)
    assert [s["host"] for s in readonly.sessions()] == [None]
    readonly.close()
    assert _schema(tmp_path / "run.sqlite") == "1"  # reading does not change the file

    store = RunStore.open(tmp_path)
    assert _schema(tmp_path / "run.sqlite") == "1"  # opening writes nothing either
    store.start_session(2, "evo resume", describe_host())
    assert _schema(tmp_path / "run.sqlite") == "3"
    sessions = store.sessions()
    store.close()
    assert sessions[0]["host"] is None and sessions[0]["reason"] == "completed"
    assert sessions[1]["host"] == describe_host()


def test_a_store_of_an_unknown_schema_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    from evo.cli import main
    from evo.search.config import RunConfig

    RunConfig(model="tiny").save(tmp_path)
    RunStore.create(tmp_path).close()
    with sqlite3.connect(tmp_path / "run.sqlite") as db:
        db.execute("UPDATE meta SET value = '9' WHERE key = 'schema'")
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "schema 9" in err


def test_bench_table_notes_a_search_that_ran_on_another_machine() -> None:
    here = describe_host()
    result = {"model": "tiny", "threads": 2, "individual": 3, "rows": [], "speedup": {},
              "host": here, "search_hosts": [here, {**here, "mcpu": "znver9"}]}
    lines = format_table(result).splitlines()
    assert lines[1].startswith("measured on ") and here["mcpu"] in lines[1]
    notes = [line for line in lines if line.startswith("note: the search also ran on")]
    assert len(notes) == 1 and "znver9" in notes[0]
    result["search_hosts"] = [here]
    assert "note:" not in format_table(result)


def _evo(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "evo", *argv], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_resume_on_another_machine_warns_and_status_lists_both(tmp_path: Path) -> None:
    run, cache = tmp_path / "run", str(tmp_path / "cache.sqlite")
    _evo("run", "--model", "tiny", "--evaluator", "tvm", "--population", "2",
         "--generations", "0", "--out", str(run), "--cache", cache, "--quiet")
    same = _evo("resume", str(run), "--generations", "1", "--quiet")
    assert "warning" not in same.stderr
    with sqlite3.connect(run / "run.sqlite") as db:  # as if session 2 ran on another CPU
        (text,) = db.execute("SELECT host FROM sessions WHERE id = 2").fetchone()
        elsewhere = {**json.loads(text), "mcpu": "znver9", "cpu": "Elsewhere CPU"}
        db.execute("UPDATE sessions SET host = ? WHERE id = 2", (json.dumps(elsewhere),))

    moved = _evo("resume", str(run), "--generations", "1", "--quiet")
    warning = [line for line in moved.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "Elsewhere CPU" in warning[0] and "znver9" in warning[0]
    status = run_status(load_run(run))
    assert [h["sessions"] for h in status["hosts"]] == [[1, 3], [2]]
    assert status["hosts"][0]["host"] == describe_host()
    text = format_status(status)
    assert "2 machines" in text and "Elsewhere CPU" in text
