"""Measuring layer programs: parallel builds, serial timing, a shared cache.

    evaluator = make_evaluator("tvm", jobs=2, cache_path=DEFAULT_CACHE)
    results = evaluator.measure([LayerJob(spec, genome), ...])   # one per job, in order
    evaluator.close()

A network's latency is the sum of its slots' measured conv latencies (identical
slots measured once); see `evo.commands.measure`.
"""

from __future__ import annotations

from pathlib import Path

from evo.errors import UsageError
from evo.measure.types import LayerEvaluator, LayerJob, LayerMeasurement, Progress

DEFAULT_CACHE = "runs/.cache/measurements.sqlite"
EVALUATORS = ("tvm", "analytic")


def make_evaluator(kind: str = "tvm", *, target: str | dict | None = None,
                   jobs: int | None = None, cache_path: str | Path | None = None,
                   runner: str | None = None, backend: str = "loky",
                   scheduler: str | None = None, build_timeout_s: float = 60.0,
                   threads: int | None = None) -> LayerEvaluator:
    """An evaluator of `kind` "tvm" (real measurement) or "analytic" (an estimate).

    `target`: TVM target (JSON string or dict; default llvm for this CPU).
    `jobs`: parallel builds (default all cores). `cache_path`: SQLite cache (None:
    no cache). `runner`: None for this machine or `rpc://HOST:PORT/KEY`.
    `backend`/`scheduler`: "loky", or "dask" with the scheduler's address.
    `build_timeout_s`: a build running longer is killed and becomes an error.
    `threads`: runtime thread count (default all cores; for RPC the device's own).
    The analytic evaluator uses only `cache_path` and `threads`.
    Raises UsageError for bad options.
    """
    _check_common_options(runner, backend, scheduler)
    if kind == "tvm":
        from evo.measure.tvm_evaluator import TvmEvaluator

        return TvmEvaluator(target=target, jobs=jobs, cache_path=cache_path, runner=runner,
                            backend=backend, scheduler=scheduler,
                            build_timeout_s=build_timeout_s, threads=threads)
    if kind == "analytic":
        from evo.measure.analytic import AnalyticEvaluator

        return AnalyticEvaluator(cache_path=cache_path, threads=threads)
    raise UsageError(f"--evaluator {kind!r}: choose one of {', '.join(EVALUATORS)}")


def _check_common_options(runner: str | None, backend: str, scheduler: str | None) -> None:
    """Reject malformed runner/backend options whichever evaluator is chosen."""
    from evo.measure.device import parse_runner

    try:
        parse_runner(runner)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if backend not in ("loky", "dask"):
        raise UsageError(f"--backend {backend!r}: choose loky or dask")
    if backend == "dask" and not scheduler:
        raise UsageError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")


__all__ = [
    "DEFAULT_CACHE",
    "EVALUATORS",
    "LayerEvaluator",
    "LayerJob",
    "LayerMeasurement",
    "Progress",
    "make_evaluator",
]
