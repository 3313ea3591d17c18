"""The run store: one SQLite file per run folder (`runs/NAME/run.sqlite`).

Tables: `meta` (application id, schema version), `individuals` (hash, genome by
reference, generation, parents, operator and what it changed), `evaluations`
(latency, Fisher Potential, violation, error, per-slot results by reference),
the content tables they refer to (`slots`, `genes`, `layer_genomes`,
`slot_results`: each distinct content once, see `evo.store.content`),
`generations` (per finished generation, in one transaction with its individuals
and evaluations: the population, the Pareto set, the best legal individual, the
RNG state and the logbook) and `sessions` (each process that ran the search, the
machine it ran on, and how it stopped). Nothing is pickled. A store of schema 1 or
2 (whole genomes in every row; schema 1 without the sessions' machine) is read as
it is and upgraded in place when a session is first recorded in it, that is by
`evo resume` (`evo.store.legacy`); read-only commands never write to it.

`open` refuses a store SQLite's `quick_check` finds damaged and one whose tables
lack a column; every read checks each field it returns (`evo.store.validate`), and
`load` also checks what the checkpoints name, so damage is one line naming the
damaged part (a `UsageError`) before anything is used or written. `load` reads in
one SQLite read transaction: one consistent picture, even while a search commits
generations or a resume upgrades the store.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from evo.errors import UsageError
from evo.sqlite_files import integrity_problem, sqlite_uri, table_columns
from evo.store import content, legacy
from evo.store import validate as v
from evo.store.records import Checkpoint, Evaluation, Individual

APPLICATION = "evo-run"
SCHEMA_VERSION = 3
READABLE_SCHEMAS = ("1", "2", "3")
DB_NAME = "run.sqlite"

_SCHEMA = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n" + \
    ";\n".join(content.TABLES) + """;
CREATE TABLE generations (
    generation INTEGER PRIMARY KEY,
    population TEXT NOT NULL,
    front TEXT NOT NULL,
    best INTEGER,
    rng_state TEXT NOT NULL,
    next_id INTEGER NOT NULL,
    evaluations INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    logbook TEXT NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    command TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    reason TEXT,
    host TEXT
);
"""


T = TypeVar("T")


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """Turn damage found while reading into one line naming the store and the part."""
    @functools.wraps(method)
    def read(self: RunStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except v.Damage as exc:
            raise UsageError(f"{self.path}: damaged run store: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path}: cannot read the run store ({exc})") from None
    return read


@dataclass(frozen=True)
class StoredRun:
    """Everything a run store holds, checked: one consistent picture of finished
    generations (see `RunStore.load`)."""

    individuals: dict[int, Individual]
    evaluations: dict[int, Evaluation]
    checkpoints: list[Checkpoint]
    sessions: list[dict[str, Any]]
    finished_at: dict[int, float]


class RunStore:
    """Read and write one run's SQLite store. Use `create` or `open`."""

    def __init__(self, connection: sqlite3.Connection, path: Path,
                 schema: int = SCHEMA_VERSION) -> None:
        self._db = connection
        self.path = path
        self.schema = schema

    # ------------------------------------------------------------ open/create
    @classmethod
    def create(cls, folder: Path) -> RunStore:
        """A new, empty store. It is built under a temporary name and renamed into
        place, so a reader (or a crash) never sees a half-made store."""
        path = Path(folder) / DB_NAME
        if path.exists():
            raise UsageError(f"{path} already exists")
        partial = path.with_name(DB_NAME + ".partial")
        partial.unlink(missing_ok=True)
        db = sqlite3.connect(partial)
        db.executescript(_SCHEMA)
        with db:
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("application", APPLICATION), ("schema", str(SCHEMA_VERSION)),
                            ("created_at", repr(time.time()))])
        db.execute("PRAGMA journal_mode=WAL")
        db.close()
        os.replace(partial, path)
        return cls(sqlite3.connect(path, timeout=30), path)

    @classmethod
    def open(cls, folder: Path, readonly: bool = False) -> RunStore:
        """Open the store of the run in `folder`; nothing is written by opening it.

        Raises UsageError when there is no store, it is not an evo run store, its
        schema is unknown, SQLite's quick_check finds it damaged, a table lacks a
        column, or (for writing) `run.sqlite` is a symbolic link."""
        path = Path(folder) / DB_NAME
        if not path.is_file():
            raise UsageError(f"{folder}: not a run folder (no {DB_NAME})")
        if not readonly and path.is_symlink():
            raise UsageError(f"{path} is a symbolic link; evo does not write through links "
                             "in a run folder")
        try:
            db = sqlite3.connect(sqlite_uri(path, "ro" if readonly else "rw"), uri=True,
                                 timeout=30)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{path}: not an evo run store ({exc})") from None
        try:
            try:  # the schema and the tables as of one moment (a resume may upgrade it)
                db.execute("BEGIN")
                rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.DatabaseError as exc:
                raise UsageError(f"{path}: not an evo run store ({exc})") from None
            schema = _check_file(db, rows, path)
            db.rollback()
        except BaseException:
            db.close()
            raise
        return cls(db, path, schema)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ write
    def commit_generation(self, individuals: Iterable[Individual],
                          evaluations: dict[int, Evaluation], checkpoint: Checkpoint) -> None:
        """Write a finished generation's new individuals, their evaluations, what they
        name that the content tables lack, and the checkpoint in one transaction: a
        crash leaves the previous generation intact."""
        self.upgrade()
        with self._db:
            content.insert_rows(self._db, individuals, evaluations)
            c = checkpoint
            self._db.execute(
                "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.generation, json.dumps(list(c.population)), json.dumps(list(c.front)), c.best,
                 json.dumps(c.rng_state), c.next_id, c.evaluations, c.elapsed_s,
                 json.dumps(c.logbook, sort_keys=True), time.time()))

    def upgrade(self) -> None:
        """Upgrade a schema-1 or -2 store to schema 3 in place, in one transaction, then
        give the space the old rows took back to the file system (VACUUM). Every
        record is read and checked first: damage is a UsageError and nothing is
        written. Nothing to do for a schema-3 store."""
        if self.schema >= SCHEMA_VERSION:
            return
        try:
            legacy.upgrade(self._db, self.schema, SCHEMA_VERSION)
        except v.Damage as exc:
            raise UsageError(f"{self.path}: damaged run store: {exc}") from None
        except sqlite3.Error as exc:
            raise UsageError(f"{self.path}: cannot upgrade run store schema {self.schema} to "
                             f"{SCHEMA_VERSION} ({exc}); it is unchanged") from None
        self.schema = SCHEMA_VERSION
        try:  # the upgrade is committed: reclaiming the space is a bonus (atomic too)
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass

    def start_session(self, pid: int, command: str, host: dict[str, Any] | None = None) -> int:
        """Record a process starting to run the search, and the machine it runs on
        (upgrading a schema-1 or -2 store first, see `upgrade`)."""
        self.upgrade()
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO sessions (pid, command, started_at, host) VALUES (?, ?, ?, ?)",
                (pid, command, time.time(),
                 None if host is None else json.dumps(host, sort_keys=True)))
        return int(cursor.lastrowid)

    def end_session(self, session: int, reason: str) -> None:
        with self._db:
            self._db.execute("UPDATE sessions SET ended_at = ?, reason = ? WHERE id = ?",
                             (time.time(), reason, session))

    # ------------------------------------------------------------------- read
    @_reading
    def load(self, trim: bool = True) -> StoredRun:
        """Everything in the store, each field and every id a checkpoint names checked.

        The generations are read first; a generation's individuals and evaluations are
        committed with its checkpoint, so everything the last checkpoint names is there
        when they are read next. With `trim`, anything newer than that checkpoint (a
        generation committed meanwhile by a running search) is dropped."""
        with self._snapshot():
            sessions = self.sessions()
            checkpoints = self.checkpoints()
            finished = dict(self.generation_times())
            individuals = self.individuals()
            evaluations = self.evaluations()
        if trim:
            last = checkpoints[-1].generation if checkpoints else -1
            individuals = {i: ind for i, ind in individuals.items() if ind.generation <= last}
            evaluations = {i: e for i, e in evaluations.items() if i in individuals}
            finished = {g: t for g, t in finished.items() if g <= last}
        v.check_references(checkpoints, individuals, evaluations)
        return StoredRun(individuals, evaluations, checkpoints, sessions, finished)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Read in one SQLite read transaction, with the schema the store has in it (a
        resume may have upgraded it since `open`)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
            if rows.get("schema") != str(self.schema):
                self.schema = _check_file(self._db, rows, self.path)
            yield
        finally:
            self._db.rollback()

    @_reading
    def individuals(self) -> dict[int, Individual]:
        """Every individual by id, its genome whole, each field and reference checked."""
        if self.schema < 3:
            return legacy.read_individuals(self._db)
        return content.read_individuals(self._db)

    @_reading
    def evaluations(self) -> dict[int, Evaluation]:
        """Every evaluation by individual id with its per-slot results, each field and
        reference checked."""
        if self.schema < 3:
            return legacy.read_evaluations(self._db)
        return content.read_evaluations(self._db)

    @_reading
    def checkpoints(self) -> list[Checkpoint]:
        """Every finished generation's checkpoint, oldest first, each field checked."""
        rows = self._db.execute("SELECT generation, population, front, best, rng_state, next_id, "
                                "evaluations, elapsed_s, logbook FROM generations "
                                "ORDER BY generation").fetchall()
        return [v.checkpoint(row) for row in rows]

    def last_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    @_reading
    def generation_times(self) -> list[tuple[int, float]]:
        rows = self._db.execute(
            "SELECT generation, finished_at FROM generations ORDER BY generation").fetchall()
        return [(g, v.number(t, f"generation {g} finished_at")) for g, t in rows]

    @_reading
    def sessions(self) -> list[dict[str, Any]]:
        """Every session, oldest first; `host` is None where it was not recorded."""
        keys = ("id", "pid", "command", "started_at", "ended_at", "reason")
        host = "host" if "host" in table_columns(self._db, "sessions") else "NULL"
        out = []
        for row in self._db.execute(f"SELECT {', '.join(keys)}, {host} FROM sessions "
                                    "ORDER BY id"):
            session = dict(zip(keys, row[:-1], strict=True))
            part = f"session {session['id']}"
            v.integer(session["id"], "a session id")
            v.integer(session["pid"], f"{part} pid")
            v.text(session["command"], f"{part} command")
            v.number(session["started_at"], f"{part} started_at")
            v.number(session["ended_at"], f"{part} ended_at", optional=True)
            v.text(session["reason"], f"{part} reason", optional=True)
            session["host"] = v.host(row[-1])
            out.append(session)
        return out


def _check_file(db: sqlite3.Connection, meta: dict[str, str], path: Path) -> int:
    """The schema of an evo run store of a readable schema, sound to SQLite, with
    every table and column that schema has."""
    if meta.get("application") != APPLICATION:
        raise UsageError(f"{path}: not an evo run store (application "
                         f"{meta.get('application')!r})")
    if meta.get("schema") not in READABLE_SCHEMAS:
        raise UsageError(f"{path}: run store schema {meta.get('schema')}, this evo reads "
                         f"schemas {', '.join(READABLE_SCHEMAS)}")
    problem = integrity_problem(db)
    if problem is not None:
        raise UsageError(f"{path}: damaged run store (SQLite: {problem}); evo will not read "
                         "or write it")
    schema = int(meta["schema"])
    try:
        v.check_tables(db, schema)
    except v.Damage as exc:
        raise UsageError(f"{path}: damaged run store: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path}: damaged run store ({exc})") from None
    return schema
