"""Pack benchmark folders into one .tar.xz that survives a new machine, even mid-run.

    .venv/bin/python -m benchmarks.checkpoint runs/bench-resnet18-2h-batch \\
        runs/bench-resnet18-2h-batch.log benchmarks/checkpoints/bench-resnet18-2h-batch.tar.xz

`runs/` is not in git, and a session may end on a fresh checkout. Each PATH (a folder
or a file) goes into the archive under its own name. Every SQLite file (run stores,
measurement caches) is copied with SQLite's backup API, so each copy is one consistent
state even while a search writes the original, as a single file in rollback-journal
mode; every other file as it is (config.json, result.json, logs). `lock` files,
SQLite's -wal/-shm side files and compiled libraries (`.so`: MetaSchedule's network,
rebuilt from its tuning database) are left out. Restore with `tar -C runs -xJf ARCHIVE`;
`evo resume` and `evo bench` then go on from the last finished generation.
"""

from __future__ import annotations

import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".so")


def snapshot_sqlite(source: Path, copy: Path) -> None:
    """A consistent single-file copy of the database at `source`, read-only on it."""
    db = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=60)
    out = sqlite3.connect(copy)
    try:
        db.backup(out)
        out.execute("PRAGMA journal_mode=DELETE")
    finally:
        out.close()
        db.close()


def _members(path: Path) -> list[tuple[Path, Path]]:
    """(file, its name in the archive) for a file, or for each file under a folder."""
    if not path.is_dir():
        return [(path, Path(path.name))]
    return [(file, Path(path.name, file.relative_to(path)))
            for file in sorted(path.rglob("*")) if file.is_file()]


def checkpoint(paths: list[Path], archive: Path,
               leave_out: tuple[str, ...] = ()) -> list[str]:
    """Write `archive` (.tar.xz) holding each folder or file of `paths` under its own
    name, less the files whose names end with one of `leave_out` too; returns the
    member files, sorted."""
    names = []
    skipped = SKIPPED_SUFFIXES + tuple(leave_out)
    with tempfile.TemporaryDirectory(prefix="evo-checkpoint-") as staging:
        for file, name in (member for path in paths for member in _members(path)):
            if file.name == "lock" or file.name.endswith(skipped):
                continue
            target = Path(staging, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            if file.suffix == ".sqlite":
                snapshot_sqlite(file, target)
            else:
                target.write_bytes(file.read_bytes())
            names.append(str(name))
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        with tarfile.open(partial, "w:xz") as tar:
            for path in paths:
                tar.add(Path(staging, path.name), arcname=path.name)
        partial.replace(archive)
    return sorted(names)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[-1].endswith(".tar.xz"):
        print("usage: python -m benchmarks.checkpoint PATH... ARCHIVE.tar.xz", file=sys.stderr)
        return 2
    paths, archive = [Path(a) for a in args[:-1]], Path(args[-1])
    for path in paths:
        if not path.exists():
            print(f"checkpoint: {path}: no such file or folder", file=sys.stderr)
            return 2
    if len({p.name for p in paths}) != len(paths):
        print("checkpoint: two paths share a name; the archive keeps names", file=sys.stderr)
        return 2
    members = checkpoint(paths, archive)
    print(f"{archive}: {len(members)} files, {archive.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
