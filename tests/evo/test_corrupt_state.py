"""A damaged run store or measurement cache is refused in one line (exit 2) naming
the damaged part, by every command that reads it, before anything is written: real
runs made by `evo run --evaluator analytic` in a real process, damaged with SQLite
and by overwriting bytes of the file."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from evo.cli import main
from tests.evo.analytic_run import copy_run, make_analytic_run, session_count


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_analytic_run(tmp_path_factory.mktemp("made") / "r")


def sql(folder: Path, *statements: str) -> None:
    with sqlite3.connect(folder / "run.sqlite") as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evo {argv[0]}: error: "), err
    assert "Traceback" not in err
    return err


def commands(run: Path, tmp: Path) -> list[list[str]]:
    return [["status", str(run)], ["lineage", str(run)], ["report", str(run)],
            ["export", str(run), "--out", str(tmp / "exported"), "--no-tvm"],
            ["resume", str(run), "--quiet"]]


# name: (SQL that damages the store, the part the message names)
DAMAGE = {
    "parents": ("UPDATE individuals SET parents = '[1,' WHERE id = 3",
                "individual 3 parents is not valid JSON"),
    "detail": ("UPDATE individuals SET detail = 'nope' WHERE id = 2",
               "individual 2 detail is not valid JSON"),
    "genome": ("UPDATE individuals SET layers = '" + "[" * 100_000 + "' WHERE id = 2",
               "individual 2 layers is not valid JSON"),
    "slots": ("UPDATE evaluations SET results = '{\"a\":' WHERE individual_id = 1",
              "evaluation of individual 1 results is not valid JSON"),
    "latency": ("UPDATE evaluations SET latency_ms = 'fast' WHERE individual_id = 2",
                "evaluation of individual 2 latency_ms is 'fast', not a number"),
    "population": ("UPDATE generations SET population = 'x' WHERE generation = 1",
                   "generation 1 population is not valid JSON"),
    "logbook": ("UPDATE generations SET logbook = '{' WHERE generation = 0",
                "generation 0 logbook is not valid JSON"),
    "best": ("UPDATE generations SET best = 999 WHERE generation = 1",
             "generation 1 best names individual 999, which does not exist"),
    "front": ("UPDATE generations SET front = '[2, 999]' WHERE generation = 1",
              "generation 1 front names individual 999"),
    "population id": ("UPDATE generations SET population = '[1, 2, 3, 998]' "
                      "WHERE generation = 1", "generation 1 population names individual 998"),
    "dropped table": ("DROP TABLE evaluations", "table evaluations is missing"),
    "rng": ("UPDATE generations SET rng_state = '{}' WHERE generation = 1",
            "generation 1 rng_state is not a random generator state"),
    "missing evaluation": ("DELETE FROM evaluations WHERE individual_id = 4",
                           "individual 4 has no evaluation"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_field_is_one_line_naming_it_in_every_command(made: Path, tmp_path: Path,
                                                                capsys, damage: str) -> None:
    run = copy_run(made, tmp_path / "r")
    statement, part = DAMAGE[damage]
    sql(run, statement)
    before = digest(run / "run.sqlite")
    for argv in commands(run, tmp_path):
        err = one_line_error(capsys, argv)
        assert f"{run}/run.sqlite: damaged run store" in err and part in err, err
    # nothing was written: no session row, no report, no export, the same bytes
    assert digest(run / "run.sqlite") == before
    assert not (run / "report").exists() and not (tmp_path / "exported").exists()


def garble(path: Path, page: int) -> None:
    with sqlite3.connect(path) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xde\xad\xbe\xef" * (size // 4))


def test_a_garbled_page_is_refused_and_never_written(made: Path, tmp_path: Path,
                                                     capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    garble(run / "run.sqlite", 3)
    before = digest(run / "run.sqlite")
    for argv in commands(run, tmp_path):
        err = one_line_error(capsys, argv)
        assert "damaged run store (SQLite: " in err and "will not read or write it" in err
    assert digest(run / "run.sqlite") == before


def test_resume_checks_the_store_before_it_records_a_session(made: Path, tmp_path: Path,
                                                             capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    sql(run, "UPDATE generations SET rng_state = '{}' WHERE generation = 1")
    one_line_error(capsys, ["resume", str(run), "--quiet"])
    assert session_count(run) == 1
    sql(run, "UPDATE generations SET rng_state = (SELECT rng_state FROM generations "
             "WHERE generation = 0) WHERE generation = 1")
    assert main(["resume", str(run), "--generations", "1", "--quiet"]) == 0  # sound again


@pytest.mark.parametrize("damage", ["garbled", "other columns", "other database", "not sqlite"])
def test_a_bad_measurement_cache_is_refused_before_the_run_starts(made: Path, tmp_path: Path,
                                                                  capsys, damage: str) -> None:
    run = copy_run(made, tmp_path / "r")
    cache = run / "c.sqlite"
    if damage == "garbled":
        garble(cache, 2)
    elif damage == "other columns":
        cache.unlink()
        with sqlite3.connect(cache) as db:
            db.execute("CREATE TABLE measurements (spec TEXT, latency REAL)")
        db.close()
    elif damage == "other database":
        cache.unlink()
        with sqlite3.connect(cache) as db:
            db.execute("CREATE TABLE contacts (name TEXT)")
        db.close()
    else:
        cache.write_bytes(b"precious notes, not a database\n" * 200)
    before = digest(cache)
    err = one_line_error(capsys, ["resume", str(run), "--generations", "1", "--quiet"])
    assert f"cache {cache}" in err
    assert digest(cache) == before and session_count(run) == 1


def test_a_new_cache_is_marked_and_an_unmarked_one_of_the_right_shape_is_adopted(
        made: Path, tmp_path: Path) -> None:
    from evo.measure.cache import APPLICATION_ID, CACHE_SCHEMA, MeasurementCache

    def mark(path: Path) -> tuple[int, int]:
        with sqlite3.connect(path) as db:
            found = (db.execute("PRAGMA application_id").fetchone()[0],
                     db.execute("PRAGMA user_version").fetchone()[0])
        db.close()
        return found

    MeasurementCache(tmp_path / "new.sqlite").close()
    assert mark(tmp_path / "new.sqlite") == (APPLICATION_ID, CACHE_SCHEMA)
    legacy = tmp_path / "legacy.sqlite"  # as caches were written before the mark
    shutil.copy(made / "c.sqlite", legacy)
    with sqlite3.connect(legacy) as db:
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 0")
        rows = db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    db.close()
    cache = MeasurementCache(legacy)
    assert cache.count() == rows > 0
    cache.close()
    assert mark(legacy) == (APPLICATION_ID, CACHE_SCHEMA)


@pytest.mark.parametrize("name", ["uri#1", "what?x=1", "100%25"])
def test_a_run_folder_with_uri_characters_in_its_path(made: Path, tmp_path: Path, capsys,
                                                      name: str) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    run = copy_run(made, runs / name)
    assert main(["status", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generation"] == 1
    assert sorted(p.name for p in runs.iterdir()) == [name]  # no stray empty file
