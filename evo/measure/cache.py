"""The evaluation cache: one SQLite file shared by all runs and processes.

A row is keyed by (layer spec, layer-genome hash, target, TVM version, thread
count, evaluator kind, device). The database is in WAL mode so readers never
block the writer; a batch's lookups are one read transaction, and each new
measurement is committed on its own as soon as it is made, so a crash loses none
and another process sees it at once.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from evo.errors import UsageError
from evo.measure.types import LayerJob, LayerMeasurement

SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    spec TEXT NOT NULL,
    genome_hash TEXT NOT NULL,
    target TEXT NOT NULL,
    tvm_version TEXT NOT NULL,
    threads INTEGER NOT NULL,
    evaluator TEXT NOT NULL,
    device TEXT NOT NULL,
    median_ms REAL,
    spread REAL,
    repeats INTEGER NOT NULL,
    error TEXT,
    flagged INTEGER NOT NULL,
    genome TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (spec, genome_hash, target, tvm_version, threads, evaluator, device)
)
"""


@dataclass(frozen=True)
class CacheContext:
    """The key parts that are the same for every job an evaluator measures."""

    target: str
    tvm_version: str
    threads: int
    evaluator: str
    device: str = "local"


class MeasurementCache:
    """Reads and writes measurements in one SQLite file (created with its folder)."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cache {self.path}: cannot open ({exc})") from None

    def lookup(self, context: CacheContext,
               jobs: list[LayerJob]) -> dict[tuple[str, str], LayerMeasurement]:
        """The cached measurements of these jobs (by job key), in one read transaction."""
        found: dict[tuple[str, str], LayerMeasurement] = {}
        query = ("SELECT median_ms, spread, repeats, error, flagged FROM measurements WHERE "
                 "spec=? AND genome_hash=? AND target=? AND tvm_version=? AND threads=? "
                 "AND evaluator=? AND device=?")
        self._db.execute("BEGIN")
        try:
            for job in jobs:
                key = job.key
                if key in found:
                    continue
                row = self._db.execute(query, (*key, *_context_values(context))).fetchone()
                if row is not None:
                    median, spread, repeats, error, flagged = row
                    found[key] = LayerMeasurement(median, spread, repeats, context.threads,
                                                  error=error, cached=True, flagged=bool(flagged))
        finally:
            self._db.execute("COMMIT")
        return found

    def store(self, context: CacheContext, job: LayerJob, result: LayerMeasurement) -> None:
        """Write one measurement and commit it (replacing an older one with the same key)."""
        self._db.execute(
            "INSERT OR REPLACE INTO measurements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*job.key, *_context_values(context), result.median_ms, result.spread,
             result.repeats, result.error, int(result.flagged), job.genome.canonical(),
             time.time()),
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def _context_values(context: CacheContext) -> tuple:
    return (context.target, context.tvm_version, context.threads, context.evaluator,
            context.device)
