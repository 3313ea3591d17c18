"""The run store: one SQLite file per run folder (`runs/NAME/run.sqlite`).

Tables: `meta` (application id, schema version), `individuals` (genome, hash,
generation, parents, operator and what it changed), `evaluations` (latency,
Fisher Potential, violation, error), `generations` (per finished generation, in
one transaction with its individuals and evaluations: the population, the Pareto
set, the best legal individual, the RNG state and the logbook) and `sessions`
(each process that ran the search, the machine it ran on, and how it stopped).
Nothing is pickled. A schema-1 store (before sessions recorded their machine) is
read as it is and upgraded in place when opened for writing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evo.errors import UsageError
from evo.store.records import Checkpoint, Evaluation, Individual
from genomes.genes import GenomeFormatError
from genomes.genome import NetworkGenome

APPLICATION = "evo-run"
SCHEMA_VERSION = 2
READABLE_SCHEMAS = ("1", "2")
DB_NAME = "run.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE individuals (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    genome TEXT NOT NULL,
    generation INTEGER NOT NULL,
    parents TEXT NOT NULL,
    operator TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX individuals_hash ON individuals(hash);
CREATE TABLE evaluations (
    individual_id INTEGER PRIMARY KEY REFERENCES individuals(id),
    latency_ms REAL,
    fisher REAL,
    violation REAL,
    error TEXT,
    slots TEXT NOT NULL
);
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


class RunStore:
    """Read and write one run's SQLite store. Use `create` or `open`."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

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
        path = Path(folder) / DB_NAME
        if not path.is_file():
            raise UsageError(f"{folder}: not a run folder (no {DB_NAME})")
        uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=30)
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{path}: not an evo run store ({exc})") from None
        if rows.get("application") != APPLICATION:
            raise UsageError(f"{path}: not an evo run store (application "
                             f"{rows.get('application')!r})")
        if rows.get("schema") not in READABLE_SCHEMAS:
            raise UsageError(f"{path}: run store schema {rows.get('schema')}, this evo reads "
                             f"schemas {', '.join(READABLE_SCHEMAS)}")
        try:
            db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{path}: corrupted run store ({exc})") from None
        if rows["schema"] == "1" and not readonly:
            try:
                _upgrade_from_1(db)
            except sqlite3.Error as exc:
                raise UsageError(f"{path}: cannot upgrade run store schema 1 to "
                                 f"{SCHEMA_VERSION} ({exc})") from None
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ write
    def commit_generation(self, individuals: Iterable[Individual],
                          evaluations: dict[int, Evaluation], checkpoint: Checkpoint) -> None:
        """Write a finished generation's new individuals, their evaluations and the
        checkpoint in one transaction: a crash leaves the previous generation intact."""
        with self._db:
            self._db.executemany(
                "INSERT INTO individuals VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i.id, i.hash, i.genome.canonical(), i.generation, json.dumps(list(i.parents)),
                  i.operator, json.dumps(i.detail, sort_keys=True)) for i in individuals])
            self._db.executemany(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
                [(ident, e.latency_ms, e.fisher, e.violation, e.error,
                  json.dumps(e.slots, sort_keys=True)) for ident, e in evaluations.items()])
            c = checkpoint
            self._db.execute(
                "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.generation, json.dumps(list(c.population)), json.dumps(list(c.front)), c.best,
                 json.dumps(c.rng_state), c.next_id, c.evaluations, c.elapsed_s,
                 json.dumps(c.logbook, sort_keys=True), time.time()))

    def start_session(self, pid: int, command: str, host: dict[str, Any] | None = None) -> int:
        """Record a process starting to run the search, and the machine it runs on."""
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
    def individuals(self) -> dict[int, Individual]:
        out = {}
        for ident, _hash, genome, generation, parents, operator, detail in self._db.execute(
                "SELECT * FROM individuals ORDER BY id"):
            out[ident] = Individual(ident, _parse_genome(genome, ident), generation,
                                    tuple(json.loads(parents)), operator, json.loads(detail))
        return out

    def evaluations(self) -> dict[int, Evaluation]:
        return {
            ident: Evaluation(latency, fisher, violation, error, json.loads(slots))
            for ident, latency, fisher, violation, error, slots in self._db.execute(
                "SELECT * FROM evaluations")
        }

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._db.execute("SELECT generation, population, front, best, rng_state, next_id, "
                                "evaluations, elapsed_s, logbook FROM generations "
                                "ORDER BY generation").fetchall()
        return [Checkpoint(g, tuple(json.loads(pop)), tuple(json.loads(front)), best,
                           json.loads(rng), next_id, evals, elapsed, json.loads(log))
                for g, pop, front, best, rng, next_id, evals, elapsed, log in rows]

    def last_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.checkpoints()
        return checkpoints[-1] if checkpoints else None

    def generation_times(self) -> list[tuple[int, float]]:
        return self._db.execute(
            "SELECT generation, finished_at FROM generations ORDER BY generation").fetchall()

    def sessions(self) -> list[dict[str, Any]]:
        """Every session, oldest first; `host` is None where it was not recorded."""
        keys = ("id", "pid", "command", "started_at", "ended_at", "reason")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        host = "host" if "host" in columns else "NULL"
        out = []
        for row in self._db.execute(f"SELECT {', '.join(keys)}, {host} FROM sessions "
                                    "ORDER BY id"):
            session = dict(zip(keys, row[:-1], strict=True))
            session["host"] = _parse_host(row[-1])
            out.append(session)
        return out


def _upgrade_from_1(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: sessions gain a `host` column (NULL for the sessions before)."""
    with db:
        db.execute("ALTER TABLE sessions ADD COLUMN host TEXT")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))


def _parse_host(text: str | None) -> dict[str, Any] | None:
    """A session's recorded host; None when absent or unreadable (it only informs)."""
    if text is None:
        return None
    try:
        host = json.loads(text)
    except json.JSONDecodeError:
        return None
    return host if isinstance(host, dict) else None


def _parse_genome(text: str, ident: int) -> NetworkGenome:
    try:
        return NetworkGenome.from_json(json.loads(text))
    except (json.JSONDecodeError, GenomeFormatError) as exc:
        raise UsageError(f"run store: individual {ident} has a malformed genome ({exc})") from None
