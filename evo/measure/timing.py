"""How one compiled program is timed: warm-up, repeat length, repeats, median, spread.

The protocol, for a function `time_runs(number, repeat)` that returns `repeat`
per-run times in seconds (each the mean of `number` back-to-back runs, after one
untimed warm-up run, as TVM's `time_evaluator` does):

1. Warm-up and estimate: `time_runs(1, 1)` gives one run's time `t1`.
2. `number = ceil(min_repeat_ms / t1)`, so each repeat lasts at least
   `min_repeat_ms` (20 ms): long against timer resolution, call overhead and
   the millisecond-scale preemptions of a shared machine, short enough that five
   repeats of a fast layer cost ~0.1 s. A program slower than that runs once per
   repeat.
3. `repeats` (5) repeats; the median is the result; spread = (max - min) / median.
4. A spread above `spread_limit` (10 %) is re-measured once, if the first set
   took less than `remeasure_budget_ms`; the set with the smaller spread is kept,
   and it is flagged when even that spread is above the limit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

TimeRuns = Callable[[int, int], list[float]]


@dataclass(frozen=True)
class TimingPolicy:
    min_repeat_ms: float = 20.0
    repeats: int = 5
    spread_limit: float = 0.10
    remeasure_budget_ms: float = 2000.0

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.min_repeat_ms < 0 or self.spread_limit < 0:
            raise ValueError("TimingPolicy: repeats >= 1, min_repeat_ms >= 0, spread_limit >= 0")

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Timing:
    median_ms: float
    spread: float
    repeats: int
    number: int
    flagged: bool
    remeasured: bool


def spread_of(samples_ms: list[float]) -> float:
    """(max - min) / median; 0 for a single sample."""
    median = statistics.median(samples_ms)
    return (max(samples_ms) - min(samples_ms)) / median if median > 0 else 0.0


def time_program(time_runs: TimeRuns, policy: TimingPolicy) -> Timing:
    """Apply the protocol above to one program."""
    single_ms = max(time_runs(1, 1)[0] * 1e3, 1e-6)
    number = max(1, math.ceil(policy.min_repeat_ms / single_ms))
    samples = [s * 1e3 for s in time_runs(number, policy.repeats)]
    spread = spread_of(samples)
    remeasured = False
    if spread > policy.spread_limit and sum(samples) * number < policy.remeasure_budget_ms:
        again = [s * 1e3 for s in time_runs(number, policy.repeats)]
        remeasured = True
        if spread_of(again) < spread:
            samples, spread = again, spread_of(again)
    return Timing(statistics.median(samples), spread, len(samples), number,
                  flagged=spread > policy.spread_limit, remeasured=remeasured)
