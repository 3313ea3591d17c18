"""Opening SQLite files that may have been received, copied or damaged.

`sqlite_uri` quotes the path (a `#` or `?` in a folder name is part of the path, not
a URI fragment or query); `integrity_problem` asks SQLite's `quick_check` and
returns its first complaint; `table_columns` lists a table's columns in order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote


def sqlite_uri(path: str | Path, mode: str) -> str:
    """A `file:` URI for `path` opened with `mode` (ro, rw or rwc)."""
    return f"file:{quote(str(Path(path).absolute()))}?mode={mode}"


def integrity_problem(db: sqlite3.Connection) -> str | None:
    """SQLite's first complaint about the file (`PRAGMA quick_check`), one line, or None."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if rows == [("ok",)]:
        return None
    lines = " ".join(str(row[0]) for row in rows[:2]).splitlines()
    text = " ".join(line.strip() for line in lines if line.strip() and "***" not in line)
    return text[:200] or "quick_check failed"


def table_columns(db: sqlite3.Connection, table: str) -> list[str]:
    """The columns of `table` in order (empty when there is no such table)."""
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
