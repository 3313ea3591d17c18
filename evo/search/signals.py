"""SIGINT/SIGTERM ask the search to stop at the next safe point."""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType

ACKNOWLEDGE = ("\n{name}: stopping after the candidates in flight; "
               "Ctrl-C again to stop now\n")


class StopSignals:
    """While active, the first SIGINT or SIGTERM records a stop request (the loop
    checks `requested()` between evaluation chunks) and says so at once on stderr;
    a second one stops at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def requested(self) -> str | None:
        return self.reason

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.reason is not None:
            raise KeyboardInterrupt(f"second {name}")
        self.reason = f"interrupted ({name})"
        with contextlib.suppress(OSError):  # os.write: no buffered stream in a handler
            os.write(2, ACKNOWLEDGE.format(name=name).encode())

    def __enter__(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
