"""Start helper processes that a terminal's Ctrl-C does not reach.

A terminal sends SIGINT to its whole foreground process group: the search, its build
workers and its timing process. Stopping is the search's decision (at a safe point,
`evo.search.signals`). A helper killed by the same Ctrl-C would print its traceback,
turn the builds or the timing under way into errors (a build worker dying while it
starts breaks the whole pool), and a build worker's KeyboardInterrupt would be raised
again in the search by the pool, ending it at once instead of at its safe point.

An ignored signal stays ignored across fork and exec, and Python leaves an inherited
SIG_IGN for SIGINT in place, so a process started inside `children_ignore_ctrl_c()`
ignores Ctrl-C for life, from its first instruction. Only process starts should run
inside: the disposition is the whole process's, so a Ctrl-C that reaches another of
the parent's threads meanwhile is lost (the main thread holds one back until the end).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started in the body ignore SIGINT; this process's handler is back after
    (a SIGINT that reached the main thread meanwhile is delivered to it then)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal dispositions can only be changed from the main thread
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def ignore_ctrl_c() -> None:
    """Ignore SIGINT in this process (a worker pool's initializer, for workers the pool
    restarts on its own)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
