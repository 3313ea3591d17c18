"""Start helper processes in process groups of their own, out of a terminal's Ctrl-C.

A terminal sends SIGINT to its whole foreground process group. Stopping is the
search's decision (at a safe point, `evo.search.signals`). A helper reached by the same
Ctrl-C would print its traceback, turn the builds or the timing under way into errors
(a build worker dying while it starts breaks the whole pool), and a build worker's
KeyboardInterrupt would be raised again in the search by the pool, ending it at once
instead of at its safe point.

So helpers start in a new process group (`setpgid(0, 0)` between fork and exec): the
terminal's signals do not reach them once they run Python, and the search's own signal
handling is never touched, so no Ctrl-C can be lost while they start. (A Ctrl-C in the
microseconds between a helper's fork and its `setpgid` still kills that helper; the
search was asked to stop then, and stops.) (An
earlier design ignored SIGINT in the whole search process while starting them, and a
Ctrl-C that the kernel handed to another of its threads meanwhile was lost.) Helpers
still die with the search: build workers watch their parent (`evo.measure.pool`), the
measurement process reads its requests from the search's pipe.

The measurement process is a `subprocess.Popen(..., **OWN_GROUP)`. Loky starts its
workers with a fork-exec of its own whose process group cannot be chosen, so
`start_loky_workers_in_own_group()` replaces it with the same call plus the group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

OWN_GROUP = {"process_group": 0}  # subprocess.Popen keyword arguments


def start_loky_workers_in_own_group() -> None:
    """Make every loky worker started from now on in this process lead a new process
    group (idempotent)."""
    from joblib.externals.loky.backend import fork_exec as loky_fork_exec

    loky_fork_exec.fork_exec = fork_exec_in_own_group


def fork_exec_in_own_group(cmd: Sequence[str], keep_fds: Sequence[int],
                           env: dict[str, str] | None = None) -> int:
    """loky's `fork_exec` (close every descriptor but `keep_fds`, run `cmd` with
    `env` added to this environment), with the child in a new process group."""
    import _posixsubprocess

    args = [os.fsencode(arg) for arg in cmd]
    environment = [os.fsencode(f"{key}={value}")
                   for key, value in {**os.environ, **(env or {})}.items()]
    errpipe_read, errpipe_write = os.pipe()
    allow_vfork = [subprocess._USE_VFORK] if sys.version_info < (3, 14) else []
    try:
        return _posixsubprocess.fork_exec(
            args, args[0:1], True, tuple(sorted(map(int, keep_fds))), None, environment,
            -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write,
            False,  # restore_signals
            False,  # call_setsid
            0,  # pgid_to_set: a group of its own
            None, None, None, -1, None, *allow_vfork)
    finally:
        os.close(errpipe_read)
        os.close(errpipe_write)


def ignore_ctrl_c() -> None:
    """Ignore SIGINT in this process (a build worker's initializer: a second line of
    defence, for a SIGINT sent to the worker itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
