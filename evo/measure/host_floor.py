"""The host's own timing noise: a fixed piece of CPU work timed with our protocol.

A pure-Python loop executes the same instructions every run and touches no
memory beyond a few cache lines, so its time varies only with the CPU it gets:
frequency changes, another tenant on the same physical core (SMT), the
hypervisor descheduling the virtual CPU. Timed with exactly the protocol of
`evo.measure.timing` and repeated like the program in `evo bench-measure`, the
spread of its medians is the floor below which no measurement protocol on this
machine can go; `evo bench-measure` reports it beside the program's spread.
"""

from __future__ import annotations

import time

from evo.measure.interference import OtherLoad
from evo.measure.timing import Timing, TimingPolicy, time_program

WORK_ITERATIONS = 20_000  # about 1 ms of CPython on a current core


def fixed_work(iterations: int = WORK_ITERATIONS) -> int:
    """The same integer arithmetic every call."""
    total = 0
    for i in range(iterations):
        total += i * i
    return total


def time_fixed_work(number: int, repeat: int) -> tuple[list[float], float]:
    """`TimeRuns` for `fixed_work`: one untimed warm-up, then per-run seconds of each repeat."""
    fixed_work()
    seconds = []
    with OtherLoad() as load:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                fixed_work()
            seconds.append((time.perf_counter() - start) / number)
    return seconds, load.share


def time_host_floor(policy: TimingPolicy) -> Timing:
    """One measurement of `fixed_work` with the whole protocol, in this process."""
    return time_program(time_fixed_work, policy)
