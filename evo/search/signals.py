"""SIGINT/SIGTERM ask the search to stop at the next safe point.

The first signal is a stop request: said at once on stderr, honoured by the loop
between evaluation chunks. A second one stops at once (KeyboardInterrupt) what runs
in a `released()` block (the search, the closing of its machinery); anywhere else,
as while the run records how it ended, it is only counted, so the
session row is always written. Once a signal has stopped a run the process is
ending: after `StopSignals` is left, SIGINT and SIGTERM get the system's default
action, so a late Ctrl-C ends the process at once by the signal (the shell's exit
status 130) instead of waiting for build workers at Python's exit or printing a
traceback from its shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

ACKNOWLEDGE = ("\n{name}: stopping after the candidates in flight; "
               "Ctrl-C again to stop now\n")
ACKNOWLEDGE_START = ("\n{name}: stopping after the start-up checks; "
                     "Ctrl-C again to stop now\n")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While active, the first SIGINT or SIGTERM records a stop request (the loop
    checks `requested()` between evaluation chunks) and says so at once on stderr;
    a later one raises KeyboardInterrupt("second SIGINT") inside `released()` and
    is only counted outside it."""

    def __init__(self, acknowledge: str = ACKNOWLEDGE) -> None:
        self.acknowledge = acknowledge
        self.reason: str | None = None
        self.received = 0
        self._released = False
        self._previous: dict[int, object] = {}

    def requested(self) -> str | None:
        return self.reason

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """A block a second signal interrupts (KeyboardInterrupt): enclose it in the
        `try` that handles that, as the interrupt may come until the block is left."""
        released, self._released = self._released, True
        try:
            yield
        finally:
            self._released = released

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received += 1
        if self.reason is not None:
            if self._released:
                raise KeyboardInterrupt(f"second {name}")
            return
        self.reason = f"interrupted ({name})"
        with contextlib.suppress(OSError):  # os.write: no buffered stream in a handler
            os.write(2, self.acknowledge.format(name=name).encode())

    def __enter__(self) -> StopSignals:
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if self.received else handler)
