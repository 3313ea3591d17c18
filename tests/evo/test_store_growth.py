"""The run store stores each distinct layer genome, gene and per-slot result once
(schema 3): a ResNet-18 search grows it by under 2 KB per individual; stores written
before (schema 2) are read unchanged by every read-only command, upgraded by
`evo resume` in one transaction, and a reference to a part that does not exist is
refused in one line. Real runs in real processes, real SQLite files."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from evo.analysis import load_run
from evo.cli import main
from evo.store.run_store import DB_NAME, RunStore
from tests.evo.analytic_run import ENV, copy_run, session_count
from tests.evo.old_store import schema_of, write_old_store
from tests.evo.test_corrupt_state import commands, digest, one_line_error, sql


def evo_run(out: Path, *args: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "evo", "run", "--evaluator", "analytic",
                           "--out", str(out), "--cache", str(out / "c.sqlite"), "--quiet",
                           *args], env=ENV, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A tiny search of 4 generations: crossover and mutation share layer genomes."""
    return evo_run(tmp_path_factory.mktemp("made") / "r", "--model", "tiny",
                   "--population", "6", "--generations", "3", "--seed", "3")


def individuals(run: Path) -> int:
    with sqlite3.connect(f"file:{run / DB_NAME}?mode=ro", uri=True) as db:
        count = db.execute("SELECT COUNT(*) FROM individuals").fetchone()[0]
    db.close()
    return count


@pytest.mark.slow
def test_a_resnet18_search_grows_its_store_by_under_2kb_per_individual(tmp_path: Path) -> None:
    """The file's growth over an empty store, per individual (it was about 12 KB:
    the whole network genome and every slot's result in every row)."""
    (tmp_path / "empty").mkdir()
    RunStore.create(tmp_path / "empty").close()
    empty = (tmp_path / "empty" / DB_NAME).stat().st_size
    run = evo_run(tmp_path / "r", "--model", "resnet18", "--population", "16",
                  "--generations", "4", "--capacity", "params")  # the store is the same
    count = individuals(run)
    per_individual = ((run / DB_NAME).stat().st_size - empty) / count
    assert count == 80 and per_individual < 2048, per_individual


# ----------------------------------------------------------- old-format stores
def outputs(run: Path, tmp: Path, capsys) -> dict:
    """What the read-only commands say about `run`: status (but its sessions), lineage,
    the report's text, the exported genome and model."""
    capsys.readouterr()
    assert main(["status", str(run), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    for key in ("last_stop", "sessions", "hosts", "run", "pid", "running"):
        status.pop(key)
    assert main(["lineage", str(run), "--json"]) == 0
    lineage = json.loads(capsys.readouterr().out)
    assert main(["report", str(run), "--out", str(tmp / "report")]) == 0
    assert main(["export", str(run), "--out", str(tmp / "export"), "--no-tvm"]) == 0
    capsys.readouterr()
    report = (tmp / "report" / "report.md").read_text().replace(str(run), "RUN")
    report = re.sub(r"\([^()]* ago\)", "(ago)", report)  # times since, and how the last
    report = re.sub(r"\nlast stop .*\n", "\n", report)   # session stopped, may differ
    return {"status": status, "lineage": lineage, "report": report,
            "genome": json.loads((tmp / "export" / "genome.json").read_text()),
            "model": json.loads((tmp / "export" / "model.json").read_text().replace(
                str(run), "RUN"))}


def records(run: Path) -> tuple:
    snap = load_run(run)
    return snap.individuals, snap.evaluations, snap.checkpoints, snap.finished_at


def test_an_old_store_is_read_unchanged_then_upgraded_by_resume(made: Path, tmp_path: Path,
                                                                capsys) -> None:
    expected = outputs(made, tmp_path / "new", capsys)
    old = copy_run(made, tmp_path / "old" / made.name)  # the report names the folder
    write_old_store(old)
    assert schema_of(old) == "2" and records(old) == records(made)
    before = digest(old / DB_NAME)
    assert outputs(old, tmp_path / "read", capsys) == expected
    assert digest(old / DB_NAME) == before and schema_of(old) == "2"  # nothing written

    assert main(["resume", str(old), "--generations", "0", "--quiet"]) == 0
    assert schema_of(old) == "3" and session_count(old) == 2
    assert records(old) == records(made)
    assert outputs(old, tmp_path / "upgraded", capsys) == expected
    with sqlite3.connect(f"file:{old / DB_NAME}?mode=ro", uri=True) as db:
        tables = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")}
    db.close()
    with sqlite3.connect(f"file:{made / DB_NAME}?mode=ro", uri=True) as db:
        fresh = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")}
    db.close()
    assert tables == fresh  # the upgraded store is a schema-3 store like a new one


def comparable(run: Path) -> tuple:
    """A run's records but the times: what an exact resume must reproduce."""
    individuals, evaluations, checkpoints, _ = records(run)
    return individuals, evaluations, [
        (c.generation, c.population, c.front, c.best, c.rng_state, c.next_id, c.evaluations)
        for c in checkpoints]


def test_an_upgraded_run_continues_exactly_as_the_run_never_downgraded(made: Path,
                                                                       tmp_path: Path) -> None:
    new, old = copy_run(made, tmp_path / "new"), copy_run(made, tmp_path / "old")
    write_old_store(old, schema=1)
    for run in (new, old):
        assert main(["resume", str(run), "--generations", "2", "--quiet"]) == 0
    assert schema_of(old) == "3"
    assert comparable(old) == comparable(new)
    assert len(comparable(new)[2]) == 6


def test_a_failed_upgrade_leaves_the_old_store_as_it_was(made: Path, tmp_path: Path,
                                                         capsys) -> None:
    """A real SQLite failure at the upgrade's last statement (a trigger refusing the
    schema mark) rolls back every table it dropped and made."""
    old = copy_run(made, tmp_path / "old")
    write_old_store(old)
    sql(old, "CREATE TRIGGER refuse BEFORE UPDATE ON meta BEGIN "
             "SELECT RAISE(ABORT, 'injected failure'); END")
    expected = records(old)
    err = one_line_error(capsys, ["resume", str(old), "--generations", "1", "--quiet"])
    assert "cannot upgrade run store schema 2 to 3" in err and "injected failure" in err
    assert schema_of(old) == "2" and records(old) == expected and session_count(old) == 1
    with sqlite3.connect(f"file:{old / DB_NAME}?mode=ro", uri=True) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "layer_genomes" not in names and "individuals" in names
    sql(old, "DROP TRIGGER refuse")
    assert main(["resume", str(old), "--generations", "1", "--quiet"]) == 0
    assert schema_of(old) == "3" and len(records(old)[2]) == 5


# ------------------------------------------------------------------ damage
# name: (SQL that damages the store, the part the message names)
DAMAGE = {
    "dangling layer genome": ("DELETE FROM layer_genomes WHERE id = 1",
                              "individual 2 layers slot "),
    "dangling gene": ("DELETE FROM genes WHERE id = 1", "names gene 1, which does not exist"),
    "dangling slot result": ("DELETE FROM slot_results WHERE id = 1",
                             "names slot result 1, which does not exist"),
    "dangling slot": ("DELETE FROM slots WHERE id = 1", "names slot 1, which does not exist"),
    "layers id": ("UPDATE individuals SET layers = '{\"1\": 99999}' WHERE id = 2",
                  "individual 2 layers slot "),
    "gene edited": ("UPDATE genes SET gene = replace(gene, '\"piece\":null', '\"piece\":1') "
                    "WHERE id = 1", "gene 1 does not match its hash"),
    "layer genome edited": ("UPDATE layer_genomes SET genes = '[]' WHERE id = 1",
                            "layer genome 1 does not match its hash"),
    "dropped content table": ("DROP TABLE slot_results", "table slot_results is missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_dangling_or_damaged_part_is_one_line_in_every_command(made: Path, tmp_path: Path,
                                                                 capsys, damage: str) -> None:
    run = copy_run(made, tmp_path / "r")
    statement, part = DAMAGE[damage]
    sql(run, statement)
    before = digest(run / DB_NAME)
    for argv in commands(run, tmp_path):
        err = one_line_error(capsys, argv)
        assert f"{run}/{DB_NAME}: damaged run store" in err and part in err, err
    assert digest(run / DB_NAME) == before and session_count(run) == 1
    assert not (run / "report").exists() and not (tmp_path / "exported").exists()


def test_a_damaged_old_store_is_refused_and_not_upgraded(made: Path, tmp_path: Path,
                                                         capsys) -> None:
    old = copy_run(made, tmp_path / "old")
    write_old_store(old)
    sql(old, "UPDATE individuals SET genome = '" + "[" * 100_000 + "' WHERE id = 2")
    before = digest(old / DB_NAME)
    for argv in commands(old, tmp_path):
        err = one_line_error(capsys, argv)
        assert "damaged run store: individual 2 genome is not valid JSON" in err, err
    assert digest(old / DB_NAME) == before and schema_of(old) == "2"
