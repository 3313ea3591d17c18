"""The values measurement works with: a job (one layer program) and its measurement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from genomes.genome import LayerGenome, canonical_json
from genomes.spec import LayerSpec

Progress = Callable[[int], None]


@dataclass(frozen=True)
class LayerJob:
    """One layer program to measure: a conv layer's spec and the genome transforming it."""

    spec: LayerSpec
    genome: LayerGenome

    @property
    def key(self) -> tuple[str, str]:
        """(canonical spec JSON, canonical genome hash): the job's part of a cache key.

        Two jobs with equal keys are the same program and are measured once.
        """
        return canonical_json(self.spec.to_json()), self.genome.hash()


@dataclass(frozen=True)
class LayerMeasurement:
    """The latency of one layer program, or why there is none.

    `median_ms` is the median over `repeats` timed repeats, `spread` is
    (max - min) / median over those repeats, `threads` the runtime thread count
    used. `error` is set (and `median_ms` is None) when the genome did not decode,
    TVM rejected it, or its build or run failed, timed out or crashed. `cached`
    says the value came from the cache; `flagged` that the spread stayed above
    the limit, or other processes kept the CPUs busy while it was timed, even
    after one re-measurement (see `evo.measure.timing`).
    """

    median_ms: float | None
    spread: float | None
    repeats: int
    threads: int | None
    error: str | None = None
    cached: bool = False
    flagged: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.median_ms is not None

    @classmethod
    def failed(cls, error: str, threads: int | None = None) -> LayerMeasurement:
        return cls(None, None, 0, threads, error=error)


class LayerEvaluator(Protocol):
    """Measures layer programs. `name` is "tvm" or "analytic"."""

    name: str

    def measure(self, jobs: list[LayerJob],
                progress: Progress | None = None) -> list[LayerMeasurement]:
        """One result per job, in order; jobs with equal keys are measured once.

        `progress(n)` is called with the number of jobs newly finished (so
        `tqdm.update` fits). Never raises for a bad candidate; raises
        `evo.errors.InfrastructureError` when the machinery keeps failing.
        """
        ...

    def preflight(self) -> None:
        """Check the machinery before measuring; raises UsageError (one line)."""
        ...

    def close(self) -> None:
        """Stop worker and measurement processes; the evaluator is unusable after."""
        ...
