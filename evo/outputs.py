"""Writing output files without writing through links.

A folder evo writes into (a run's `report/`, an export folder) may hold what
someone else put there. `check_outputs` refuses, before anything is written, a
folder or file to be written that is a symbolic link or not a folder / regular
file; `replacing` and `write_text` then write each file under a fresh temporary
name and rename it into place, so a link made meanwhile is replaced, never
followed, and a reader never sees half a file. A log evo appends to (a run's
`progress.jsonl`) is checked with `check_appendable` before anything is written and
opened with `open_appending`: never through a link (`O_NOFOLLOW`), never a FIFO or
device (`O_NONBLOCK`, then its type), never a file with other hard links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from evo.errors import UsageError


def check_outputs(folder: Path, files: Iterable[str | Path] = (),
                  follow_folder: bool = False) -> None:
    """Refuse (UsageError) if `folder` is a link (unless `follow_folder`: the command
    line named it) or not a folder, or if any of `files` in it exists as a link or
    as anything but a regular file. Nothing is created."""
    folder = Path(folder)
    if os.path.lexists(folder):
        try:
            mode = (os.stat if follow_folder else os.lstat)(folder).st_mode
        except OSError:  # a link to nothing
            mode = 0
        if not stat.S_ISDIR(mode):
            raise UsageError(f"{folder}: {_what(folder)}; evo writes only into a real folder")
    for name in files:
        path = folder / name
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise UsageError(f"{path}: {_what(path)}; evo does not write through it")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A fresh temporary path next to `path` (same suffix) to write; renamed onto
    `path` when the block ends without an error, removed otherwise."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(name)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` by renaming a complete temporary file onto it."""
    with replacing(path) as temporary:
        temporary.write_text(text)


def check_appendable(path: Path) -> None:
    """Refuse (UsageError) if `path` exists as anything but a regular file with no
    other hard link; nothing is created."""
    path = Path(path)
    if os.path.lexists(path):
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path}: {_what(path)}; evo does not write through it")
        if info.st_nlink > 1:
            raise UsageError(f"{path} has other hard links; evo does not write a file it "
                             "shares (remove it: evo makes a new one)")


def open_appending(path: Path) -> int:
    """A descriptor appending to the regular file `path` (created if missing), opened
    without following a link or blocking on a FIFO; UsageError for anything else
    (see `check_appendable`). Each `os.write` of a whole line to it lands whole."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | \
        os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            raise UsageError(f"{path}: {_what(path)}; evo does not write through it") \
                from None
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            check_appendable(path)  # says which
            raise UsageError(f"{path}: not a regular file; evo does not write through it")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _what(path: Path) -> str:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file" if not stat.S_ISREG(mode) else "a file"
