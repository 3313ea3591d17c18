"""One process at a time per run folder: an advisory `flock` on `runs/NAME/lock`.

The lock is released by the kernel when the holder exits, however it exits
(SIGKILL included), so a crashed run never leaves a stale lock behind.

A run folder may have been received from someone else, so the lock is opened
without following links (`O_NOFOLLOW`) or blocking (`O_NONBLOCK`), and only a
regular file with no other hard link is used: a symbolic link, FIFO, directory or
device named `lock` is refused in one line, and nothing is written through it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from evo.errors import UsageError

LOCK_NAME = "lock"
_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class RunLock:
    """Hold the run folder's lock for the life of this object (or until `release`)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd = _open(self.path, os.O_RDWR | os.O_CREAT, writing=True)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            holder = holder_pid(folder)
            raise UsageError(f"{folder} is being run by another process"
                             f"{f' (pid {holder})' if holder else ''}") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def holder_pid(folder: Path) -> int | None:
    """The pid of the process running this folder now, or None if none holds the lock.

    Raises UsageError when `lock` is not a regular file."""
    path = Path(folder) / LOCK_NAME
    if not os.path.lexists(path):
        return None
    fd = _open(path, os.O_RDONLY, writing=False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _open(path: Path, flags: int, writing: bool) -> int:
    """A descriptor of the regular file `path`, never of what a link points to."""
    refused = (f"{path} is not a regular file; evo does not follow links or open special "
               "files in a run folder (remove it: evo makes a new one)")
    try:
        fd = os.open(path, flags | _FLAGS, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            raise UsageError(refused) from None
        raise UsageError(f"{path}: cannot open the run lock ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (writing and info.st_nlink > 1):
        os.close(fd)
        if stat.S_ISREG(info.st_mode):
            refused = (f"{path} has other hard links; evo does not write a file it shares "
                       "(remove it: evo makes a new one)")
        raise UsageError(refused)
    return fd
