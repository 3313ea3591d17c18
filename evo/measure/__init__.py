"""Measuring layer programs: parallel builds, serial timing, a shared cache.

    evaluator = make_evaluator("tvm", jobs=2, cache_path=default_measurement_cache())
    results = evaluator.measure([LayerJob(spec, genome), ...])   # one per job, in order
    evaluator.close()

A network's latency is the sum of its slots' measured conv latencies (identical
slots measured once); see `evo.commands.measure`.
"""

from __future__ import annotations

from pathlib import Path

from evo.errors import UsageError
from evo.measure.types import LayerEvaluator, LayerJob, LayerMeasurement, Progress
from evo.paths import default_measurement_cache

EVALUATORS = ("tvm", "analytic")


def make_evaluator(kind: str = "tvm", *, target: str | dict | None = None,
                   jobs: int | None = None, cache_path: str | Path | None = None,
                   runner: str | None = None, backend: str = "loky",
                   scheduler: str | None = None, build_timeout_s: float = 60.0,
                   threads: int | None = None, preflight: bool = False) -> LayerEvaluator:
    """An evaluator of `kind` "tvm" (real measurement) or "analytic" (an estimate).

    `target`: TVM target (JSON string or dict; default llvm for this CPU).
    `jobs`: parallel builds (default all cores). `cache_path`: SQLite cache (None:
    no cache). `runner`: None for this machine or `rpc://HOST:PORT/KEY`.
    `backend`/`scheduler`: "loky", or "dask" with the scheduler's address.
    `build_timeout_s`: a build running longer is killed and becomes an error.
    `threads`: runtime thread count (default all cores; for RPC the device's own).
    `preflight`: check the machinery first (`TvmEvaluator.preflight`: compiler,
    build workers, Dask workers, timing device), before the cache is opened.
    The analytic evaluator uses only `cache_path` and `threads`.
    Raises UsageError for bad or contradictory options and a failed preflight.
    """
    check_measurement_options(kind, runner, backend, scheduler)
    if kind == "tvm":
        from evo.measure.tvm_evaluator import TvmEvaluator

        return TvmEvaluator(target=target, jobs=jobs, cache_path=cache_path, runner=runner,
                            backend=backend, scheduler=scheduler,
                            build_timeout_s=build_timeout_s, threads=threads,
                            preflight=preflight)
    from evo.measure.analytic import AnalyticEvaluator

    return AnalyticEvaluator(cache_path=cache_path, threads=threads)


def check_measurement_options(kind: str, runner: str | None, backend: str,
                              scheduler: str | None) -> None:
    """Refuse malformed or contradictory measurement options with a UsageError."""
    from evo.measure.device import parse_runner

    if kind not in EVALUATORS:
        raise UsageError(f"--evaluator {kind!r}: choose one of {', '.join(EVALUATORS)}")
    try:
        remote = parse_runner(runner)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if backend not in ("loky", "dask"):
        raise UsageError(f"--backend {backend!r}: choose loky or dask")
    if backend == "dask" and not scheduler:
        raise UsageError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    if scheduler and backend != "dask":
        raise UsageError("--scheduler is the Dask scheduler of --backend dask; "
                         "give --backend dask too, or leave --scheduler out")
    if kind == "analytic" and (remote is not None or backend == "dask"):
        option = "--runner" if remote is not None else "--backend dask"
        raise UsageError(f"{option} goes with --evaluator tvm: the analytic evaluator "
                         "builds and times nothing")


__all__ = [
    "default_measurement_cache",
    "EVALUATORS",
    "LayerEvaluator",
    "LayerJob",
    "LayerMeasurement",
    "Progress",
    "check_measurement_options",
    "make_evaluator",
]
