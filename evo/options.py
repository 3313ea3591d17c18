"""The ranges of the numeric command-line options, checked once for argparse and configs.

`Range.arg` is an argparse `type=` that parses and range-checks a value, so a bad
option is refused at parse time with one line and exit 2; `Range.check` applies the
same rule to a value from elsewhere (a `config.json`, the Python API) and raises
UsageError. A float range never admits NaN or an infinity. `target_arg` validates a
`--target` with TVM at parse time (see `evo.target.make_target`).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

from evo.errors import UsageError

SEED_LIMIT = 2**32  # numpy's legacy seeding and torch both take any seed below this


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (inclusive unless `low_open`/`high_open`);
    integers only when `integer`."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        low, high = (f"{int(x)}" if self.integer else f"{x:g}" for x in (self.low, self.high))
        return f"{kind} in {left}{low}, {high}{right}"

    def admits(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, option: str, value: object) -> None:
        """Raise UsageError unless `value` is in the range."""
        if not self.admits(value):
            raise UsageError(f"{option} {value!r}: must be {self.describe()}")

    def arg(self) -> Callable[[str], int | float]:
        """An argparse `type=` parsing one value of this range."""

        def parse(text: str) -> int | float:
            try:
                value: int | float = int(text) if self.integer else float(text)
            except ValueError:
                value = math.nan
            if not self.admits(value):
                raise argparse.ArgumentTypeError(f"{text!r}: must be {self.describe()}")
            return value

        parse.__name__ = "integer" if self.integer else "number"
        return parse


def count(low: int, high: int) -> Range:
    """Integers from `low` to `high`."""
    return Range(low, high, integer=True)


SEED = Range(0, SEED_LIMIT, integer=True, high_open=True)
POPULATION = count(2, 100_000)
GENERATIONS = count(0, 1_000_000)
INITIAL_GENES = count(1, 1000)
JOBS = count(1, 1024)
THREADS = count(1, 1024)
# Fisher Potential minibatches are 16-128 images; beyond this the forward and backward
# pass of a real network no longer fits in memory.
FISHER_BATCH = count(1, 1024)
THRESHOLD = Range(0.0, 1e6, low_open=True)
PROBABILITY = Range(0.0, 1.0)
BUILD_TIMEOUT_S = Range(0.0, 86_400.0, low_open=True)
DURATION_S = Range(0.0, 366 * 86_400.0, low_open=True)
TOLERANCE = Range(0.0, 1e6)
IDENTIFIER = count(1, 2**63 - 1)  # an individual's id (an SQLite INTEGER)


def target_arg(text: str) -> str:
    """argparse `type=` for `--target`: the target as JSON, validated by TVM; TVM's own
    string form (`llvm -mcpu=znver3 -mattr=+avx2`) is accepted and turned into JSON."""
    from evo.errors import TargetError
    from evo.target import target_json

    try:
        return target_json(text)
    except TargetError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--target {text!r}: ")
                                         ) from None

