"""How busy the rest of the machine was while we timed: CPU used by other processes.

Reads Linux's `/proc/stat` (all CPUs' busy ticks, steal included) and
`/proc/self/stat` (this process's own ticks, all threads) around a block; the
difference is what everything else ran, as a share of the machine's capacity
over the block's wall time. Ticks are 10 ms, so it is coarse for blocks shorter
than ~100 ms. Where /proc is missing the share is 0 (unknown).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_ticks() -> int | None:
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return user + nice + system + irq + softirq + steal


def _own_ticks() -> int | None:
    try:
        with open("/proc/self/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


@dataclass
class OtherLoad:
    """`with OtherLoad() as load: ...` then `load.share` (0..1)."""

    share: float = 0.0
    _start: tuple = field(default=(), repr=False)

    def __enter__(self) -> OtherLoad:
        self._start = (time.monotonic(), _machine_busy_ticks(), _own_ticks())
        return self

    def __exit__(self, *exc) -> None:
        wall0, busy0, own0 = self._start
        wall, busy, own = time.monotonic() - wall0, _machine_busy_ticks(), _own_ticks()
        if None in (busy0, own0, busy, own) or wall <= 0:
            return
        capacity = wall * _TICKS * (os.cpu_count() or 1)
        self.share = min(1.0, max(0.0, (busy - busy0 - (own - own0)) / capacity))
