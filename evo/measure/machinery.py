"""Checks of the measuring machinery, so that its failures are never a candidate's.

Before anything is measured (`TvmEvaluator.preflight`): the C++ compiler TVM links
with is found, a Dask cluster has a worker, a tiny reference conv (`REFERENCE`)
builds in a real worker and times on the real device (this machine or the RPC
runner). During measurement, a failure that may be the machinery's (an export or
link error, a worker pool that broke, a timing device that did not start or lost
its session) is checked the same way: if the reference fails too, the machinery
is at fault, and the evaluator retries after each of `retry_delays()` before it
gives up with an `InfrastructureError`.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Any

from evo.errors import UsageError
from evo.measure.types import LayerJob
from genomes.genome import LayerGenome
from genomes.spec import LayerSpec

# A 1x1 conv on a 4x4 image: builds in about a second, times in milliseconds.
REFERENCE = LayerJob(LayerSpec(4, 4, 4, 4, 1, 1), LayerGenome())
RETRY_ENV = "EVO_RETRY_DELAYS"
RETRY_DELAYS_S = (5.0, 30.0, 60.0)
DASK_WAIT_S = 15.0  # how long the preflight waits for a Dask cluster's first worker


def retry_delays() -> tuple[float, ...]:
    """Seconds to wait before each retry of a failing machinery: `EVO_RETRY_DELAYS`
    (comma-separated, e.g. `5,30,60`; empty: no retry), else `RETRY_DELAYS_S`."""
    text = os.environ.get(RETRY_ENV)
    if text is None:
        return RETRY_DELAYS_S
    try:
        delays = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        delays = (math.nan,)
    if len(delays) > 20 or not all(0 <= d <= 3600 for d in delays):
        raise UsageError(f"{RETRY_ENV}={text!r}: expected up to 20 comma-separated "
                         "seconds, each from 0 to 3600")
    return delays


def compiler_problem() -> str | None:
    """None when the C++ compiler TVM's `export_library` uses exists, else why not."""
    from tvm.support.cc import get_cc

    source = next((name for name in ("CXX", "CC") if os.environ.get(name)), None)
    compiler = get_cc()
    if compiler is None:
        return ("no C++ compiler found: TVM links every program with one (install g++, "
                "or set CXX to a compiler)")
    if shutil.which(compiler) is None:
        named = f" (from {source})" if source else ""
        return (f"the C++ compiler {compiler!r}{named} does not exist or cannot be run: "
                "TVM links every program with it (install it, or set CXX to a compiler)")
    return None


def dask_workers_problem(client: Any, scheduler: str, wait_s: float | None = None
                         ) -> str | None:
    """None when the cluster of `client` has a worker within `wait_s` (default
    `DASK_WAIT_S`), else why not."""
    wait_s = DASK_WAIT_S if wait_s is None else wait_s
    try:
        client.wait_for_workers(1, timeout=wait_s)
    except TimeoutError:
        return (f"the Dask scheduler at {scheduler} has no worker (waited {wait_s:g} s); "
                f"start one with `dask worker {scheduler}`")
    except OSError as exc:
        return f"the Dask scheduler at {scheduler} cannot be reached ({exc})"
    return None


def one_line(error: str) -> str:
    """A multi-line error (a summary, then a tail of stderr) as one line: the summary,
    and the last line of the tail when there is one."""
    lines = [line.strip(" |") for line in error.splitlines() if line.strip(" |")]
    if len(lines) <= 1:
        return lines[0] if lines else error
    return f"{lines[0]} ({lines[-1]})"
