"""What every evaluator does around its own measuring: dedupe, cache, progress, order."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from evo.measure.cache import CacheContext, MeasurementCache
from evo.measure.types import LayerJob, LayerMeasurement, Progress

# errors that depend only on the program, so caching them saves a rebuild
DETERMINISTIC_ERRORS = ("decode:", "tvm:")


def available_cores() -> int:
    """The CPUs this process may run on (the default runtime thread count)."""
    return len(os.sched_getaffinity(0))


class CachingEvaluator:
    """Base of the evaluators: subclasses implement `_measure_new` and `context`.

    `measure` measures each distinct job (by `LayerJob.key`) once, serves what it
    can from the cache, stores every new result as soon as `_measure_new` yields
    it, and returns one result per job in the order given.
    """

    name = ""

    def __init__(self, cache_path: str | Path | None) -> None:
        self.cache = MeasurementCache(cache_path) if cache_path is not None else None

    def context(self) -> CacheContext:
        raise NotImplementedError

    def preflight(self) -> None:
        """Check the machinery before measuring (nothing to check here)."""

    def _measure_new(self, jobs: list[LayerJob]) -> Iterator[tuple[LayerJob, LayerMeasurement]]:
        raise NotImplementedError

    def measure(self, jobs: list[LayerJob],
                progress: Progress | None = None) -> list[LayerMeasurement]:
        copies = Counter(job.key for job in jobs)
        unique = list({job.key: job for job in jobs}.values())
        context = self.context() if self.cache is not None else None
        results = self.cache.lookup(context, unique) if self.cache is not None else {}
        if progress is not None and results:
            progress(sum(copies[key] for key in results))
        new = [job for job in unique if job.key not in results]
        for job, result in self._measure_new(new):
            results[job.key] = result
            if self.cache is not None and _cacheable(result):
                self.cache.store(context, job, result)
            if progress is not None:
                progress(copies[job.key])
        return [results[job.key] for job in jobs]

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cacheable(result: LayerMeasurement) -> bool:
    """Measurements and program errors are kept; crashes and timeouts may be transient."""
    return result.error is None or result.error.startswith(DETERMINISTIC_ERRORS)
