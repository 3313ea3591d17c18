"""A persistent Fisher Potential cache: one SQLite file (WAL), shared between runs."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from evo.capacity.fisher import FisherResult
from evo.errors import UsageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fisher (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    input_shape TEXT NOT NULL,
    neural_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    seed INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    total REAL,
    per_slot TEXT NOT NULL,
    error TEXT
)
"""


class FisherCache:
    """Rows keyed by (model identity, input shape, neural-part hash, data, seed, batch, bn);
    the key text holds all of them, the columns the first six for reading by hand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UsageError(f"fisher cache {self.path}: cannot use it ({exc})") from None

    def get(self, key: tuple) -> FisherResult | None:
        with self._lock:
            row = self._db.execute("SELECT total, per_slot, error FROM fisher WHERE key = ?",
                                   (_key_text(key),)).fetchone()
        if row is None:
            return None
        total, per_slot, error = row
        return FisherResult(total, json.loads(per_slot), error)

    def put(self, key: tuple, result: FisherResult) -> None:
        model, shape, neural_hash, data, seed, batch, *_ = key
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO fisher VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_key_text(key), model, ",".join(map(str, shape)), neural_hash, data, seed,
                 batch, result.total, json.dumps(result.per_slot), result.error))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# Bump when the measurement or the network rebuilding changes what a key's value is.
MEASURE_VERSION = 1


def _key_text(key: tuple) -> str:
    return json.dumps([MEASURE_VERSION, *(list(k) if isinstance(k, tuple) else k for k in key)])
