"""How one compiled program is timed: warm-up, repeat length, repeats, median, spread.

The protocol, for a function `time_runs(number, repeat)` that returns `repeat`
per-run times in seconds (each the mean of `number` back-to-back runs, after one
untimed warm-up run, as TVM's `time_evaluator` does):

1. Warm-up and estimate: `time_runs(1, 1)` gives one run's time `t1`.
2. `number = ceil(min_repeat_ms / t1)`, so each repeat lasts at least
   `min_repeat_ms` (10 ms): long against timer resolution and call overhead
   (microseconds), short enough that twenty repeats of a fast layer cost ~0.2 s.
3. `repeats` (20) repeats, fewer (never below `min_repeats`, 5) when they would
   take longer than `repeat_budget_ms` (0.5 s): a naive schedule of a big layer
   can take 100 ms+ a run. The median is the result; spread = (max - min) /
   median. Interference on a shared machine comes in bursts: the median of
   twenty 10-ms repeats tolerates nine disturbed repeats where ten 20-ms repeats
   tolerate four, at the same cost. On the 2-vCPU VM this was written on, twenty
   repeats instead of ten made repeated medians of one program agree 1.2x
   better (eight series of 15: median spread 7.3 % -> 5.9 %). (No protocol helps
   against another process holding a core for seconds: a 2-thread program then
   runs at about half speed for the whole measurement; `evo bench-measure`
   shows it, and shows the host's own noise floor beside it.)
4. Each set also records `other_load`, the share of the machine other
   processes used meanwhile (`evo.measure.interference`). A set is disturbed
   when its spread is above `spread_limit` (10 %) or its other load above
   `load_limit` (25 %); a disturbed set is re-measured once, if it took less
   than `remeasure_budget_ms`. The less disturbed set is kept, and flagged when
   it is still disturbed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

# time_runs(number, repeat) -> (per-run seconds of each repeat, other processes' load share)
TimeRuns = Callable[[int, int], tuple[list[float], float]]


@dataclass(frozen=True)
class TimingPolicy:
    min_repeat_ms: float = 10.0
    repeats: int = 20
    min_repeats: int = 5
    repeat_budget_ms: float = 500.0
    spread_limit: float = 0.10
    load_limit: float = 0.25
    remeasure_budget_ms: float = 2000.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_repeats <= self.repeats or self.min_repeat_ms < 0 \
                or self.spread_limit < 0:
            raise ValueError("TimingPolicy: 1 <= min_repeats <= repeats, min_repeat_ms >= 0, "
                             "spread_limit >= 0")

    def repeats_for(self, repeat_ms: float) -> int:
        """How many repeats of `repeat_ms` each fit the budget, within the bounds."""
        fitting = int(self.repeat_budget_ms // max(repeat_ms, 1e-9))
        return max(self.min_repeats, min(self.repeats, fitting))

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Timing:
    median_ms: float
    spread: float
    repeats: int
    number: int
    other_load: float
    flagged: bool
    remeasured: bool


def spread_of(samples_ms: list[float]) -> float:
    """(max - min) / median; 0 for a single sample."""
    median = statistics.median(samples_ms)
    return (max(samples_ms) - min(samples_ms)) / median if median > 0 else 0.0


def time_program(time_runs: TimeRuns, policy: TimingPolicy) -> Timing:
    """Apply the protocol above to one program."""
    single_ms = max(time_runs(1, 1)[0][0] * 1e3, 1e-6)
    number = max(1, math.ceil(policy.min_repeat_ms / single_ms))
    repeats = policy.repeats_for(number * single_ms)

    def one_set() -> tuple[float, list[float], float]:
        seconds, load = time_runs(number, repeats)
        samples = [s * 1e3 for s in seconds]
        badness = max(spread_of(samples) / max(policy.spread_limit, 1e-9),
                      load / max(policy.load_limit, 1e-9))
        return badness, samples, load

    badness, samples, load = one_set()
    remeasured = False
    if badness > 1 and sum(samples) * number < policy.remeasure_budget_ms:
        remeasured = True
        badness, samples, load = min((badness, samples, load), one_set(), key=lambda s: s[0])
    return Timing(statistics.median(samples), spread_of(samples), len(samples), number,
                  other_load=load, flagged=badness > 1, remeasured=remeasured)
