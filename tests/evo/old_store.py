"""Run stores as evo wrote them before schema 3, for the tests of reading and upgrading
them: `write_old_store` rewrites a run folder's store with the schema-2 tables
(whole genome and per-slot results in every row) and the insert statements of the
code that wrote them, holding the same records; schema 1 also lacks the sessions'
`host` column."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from evo.store.run_store import DB_NAME, RunStore

# `evo.store.run_store._SCHEMA` of schemas 1 and 2, as it was.
OLD_SCHEMA = """
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


def write_old_store(folder: Path, schema: int = 2) -> Path:
    """Replace the (schema-3) store in `folder` by a schema-`schema` one (1 or 2) with
    the same individuals, evaluations, generations, sessions and creation time."""
    path = Path(folder) / DB_NAME
    store = RunStore.open(folder, readonly=True)
    stored = store.load(trim=False)
    store.close()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as new:
        created = new.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()[0]
        generations = new.execute("SELECT * FROM generations ORDER BY generation").fetchall()
        sessions = new.execute("SELECT * FROM sessions ORDER BY id").fetchall()
    new.close()
    old_path = path.with_name("old.sqlite")
    db = sqlite3.connect(old_path)
    db.executescript(OLD_SCHEMA)
    with db:
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("application", "evo-run"), ("schema", "2"), ("created_at", created)])
        # the statements of `RunStore.commit_generation` before schema 3
        db.executemany(
            "INSERT INTO individuals VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i.id, i.hash, i.genome.canonical(), i.generation, json.dumps(list(i.parents)),
              i.operator, json.dumps(i.detail, sort_keys=True))
             for i in stored.individuals.values()])
        db.executemany(
            "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
            [(ident, e.latency_ms, e.fisher, e.violation, e.error,
              json.dumps(e.slots, sort_keys=True)) for ident, e in stored.evaluations.items()])
        db.executemany("INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       generations)
        db.executemany("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)", sessions)
    if schema == 1:  # as schema-1 stores were: sessions without the machine
        with db:
            db.execute("ALTER TABLE sessions DROP COLUMN host")
            db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    for suffix in ("-wal", "-shm"):  # the new store's, which must not apply to the old
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(old_path, path)
    return path


def schema_of(folder: Path) -> str:
    """The schema a run folder's store says it has (read-only)."""
    with sqlite3.connect(f"file:{Path(folder) / DB_NAME}?mode=ro", uri=True) as db:
        value = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
    db.close()
    return value
