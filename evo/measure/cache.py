"""The evaluation cache: one SQLite file shared by all runs and processes.

A row is keyed by (layer spec, layer-genome hash, target, TVM version, thread
count, evaluator kind, device). The database is in WAL mode so readers never
block the writer; a batch's lookups are one read transaction, and each new
measurement is committed on its own as soon as it is made, so a crash loses none
and another process sees it at once.

The file is marked as a measurement cache (`PRAGMA application_id`, schema version
in `PRAGMA user_version`). Opening it checks the mark, SQLite's `quick_check` and
the columns, so a damaged or foreign file is refused in one line before a run
starts, never written into; a cache from before the mark, with exactly the
expected table, is marked when first opened.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from evo.errors import UsageError
from evo.measure.types import LayerJob, LayerMeasurement
from evo.sqlite_files import integrity_problem, table_columns

APPLICATION_ID = 0x65766F6D  # "evom"
CACHE_SCHEMA = 1
COLUMNS = ["spec", "genome_hash", "target", "tvm_version", "threads", "evaluator", "device",
           "median_ms", "spread", "repeats", "error", "flagged", "genome", "measured_at"]

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
    """Reads and writes measurements in one SQLite file (created with its folder).

    Raises UsageError when the file is not a measurement cache (another file, another
    SQLite database, other columns, a newer schema) or SQLite finds it damaged."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise UsageError(f"cache {self.path}: not a regular file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cache {self.path}: cannot open ({exc})") from None
        try:
            self._open_retrying(timeout_s)
        except sqlite3.Error as exc:
            self._db.close()
            raise UsageError(f"cache {self.path}: cannot open ({exc})") from None
        except UsageError:
            self._db.close()
            raise

    def _open_retrying(self, timeout_s: float) -> None:
        """Check or create the file, retried for up to `timeout_s` while another process
        holds it locked: SQLite answers "database is locked" at once, without waiting,
        when two processes open a new file together (switching it to WAL, or upgrading
        a read lock to a write lock both want)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._check_or_create()
                self._db.execute("PRAGMA synchronous=NORMAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _check_or_create(self) -> None:
        """Refuse a file that is not a sound measurement cache; make or mark one."""
        db = self._db
        marked = db.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if marked == APPLICATION_ID:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != CACHE_SCHEMA:
                raise UsageError(f"cache {self.path}: schema {version}, this evo reads "
                                 f"{CACHE_SCHEMA}; pass another --cache")
        elif marked != 0 or tables not in ([], ["measurements"]):
            raise UsageError(f"cache {self.path}: not an evo measurement cache (tables: "
                             f"{', '.join(tables) or 'none'}); pass another --cache")
        if tables:
            problem = integrity_problem(db)
            if problem is not None:
                raise UsageError(f"cache {self.path}: damaged (SQLite: {problem}); move it "
                                 "away or pass another --cache")
            self._check_columns()
            if marked == APPLICATION_ID:
                return
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(SCHEMA)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {CACHE_SCHEMA}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._check_columns()

    def _check_columns(self) -> None:
        found = table_columns(self._db, "measurements")
        if found != COLUMNS:
            raise UsageError(f"cache {self.path}: not an evo measurement cache (columns: "
                             f"{', '.join(found) or 'none'}); pass another --cache")

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
