"""Schema 1 and 2 stores: read as they are, and upgraded to schema 3 by a resume.

Schemas 1 and 2 held each individual's whole network genome (`individuals.genome`)
and each evaluation's per-slot results (`evaluations.slots`) as JSON in its row;
schema 1's sessions had no `host`. Read-only commands (status, lineage, report,
export) read such a store as it is and never write to it. The first session of a
resume (`RunStore.start_session`) upgrades it: `upgrade` reads and checks every
individual and evaluation, then, in one transaction, replaces the two tables by
schema 3's (`evo.store.content`) holding the same records, and marks the store
schema 3; a failure or a kill before the commit leaves the old store as it was.
"""

from __future__ import annotations

import sqlite3

from evo.store import validate as v
from evo.store.content import TABLES, insert_rows
from evo.store.records import Evaluation, Individual


def read_individuals(db: sqlite3.Connection) -> dict[int, Individual]:
    """Every individual by id, each field checked."""
    rows = db.execute(f"SELECT {', '.join(v.LEGACY_COLUMNS['individuals'])} "
                      "FROM individuals ORDER BY id")
    return {row[0]: v.individual(row, v.genome) for row in rows}


def read_evaluations(db: sqlite3.Connection) -> dict[int, Evaluation]:
    """Every evaluation by individual id, each field checked."""
    out = {}
    for ident, latency, fisher, violation, error, slots in db.execute(
            f"SELECT {', '.join(v.LEGACY_COLUMNS['evaluations'])} FROM evaluations"):
        part = f"evaluation of individual {ident}"
        v.integer(ident, "an evaluation's individual id")
        out[ident] = Evaluation(v.number(latency, f"{part} latency_ms", optional=True),
                                v.number(fisher, f"{part} fisher", optional=True),
                                v.number(violation, f"{part} violation", optional=True),
                                v.text(error, f"{part} error", optional=True),
                                v.parse_json(slots, dict, f"{part} slots"))
    return out


def upgrade(db: sqlite3.Connection, schema: int, version: int) -> None:
    """Rewrite a schema-1 or -2 store as schema `version` (3) in one transaction.

    Raises `validate.Damage` (nothing written) when a record does not read back;
    any other failure rolls the transaction back, leaving the store as it was."""
    db.execute("BEGIN IMMEDIATE")  # no other writer from here to the commit
    try:
        individuals = read_individuals(db)
        evaluations = read_evaluations(db)
        if schema == 1:
            db.execute("ALTER TABLE sessions ADD COLUMN host TEXT")
        db.execute("DROP TABLE evaluations")
        db.execute("DROP TABLE individuals")
        for statement in TABLES:
            db.execute(statement)
        insert_rows(db, individuals.values(), evaluations)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))
        db.commit()
    except BaseException:
        db.rollback()
        raise
