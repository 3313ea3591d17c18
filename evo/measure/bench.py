"""Benchmark of the measurement pipeline: throughput and repeatability.

Throughput: for each `--jobs` value, a fresh `tvm` evaluator (with a throw-away
cache, so commits are counted) measures distinct random layer genomes of a few
representative layer specs, batch after batch, until `layers` programs are done
or `seconds` have passed. A first small batch starts the worker and measurement
processes and is not counted; the rate is new programs built and measured per
hour of wall time after it.

Repeatability: one program is built once and timed `repeats` times through the
measurement process (each time the whole protocol of `evo.measure.timing`); the
spread of those medians is (max - min) / median, reported with each
measurement's other-process load and flag. Between the program's measurements,
a fixed piece of CPU work is timed the same way (`evo.measure.host_floor`), so
the host's own noise over the same seconds is reported beside the program's.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evo.measure.types import LayerJob
from genomes.genome import LayerGenome
from genomes.sampling import random_layer_genome
from genomes.spec import LayerSpec

BENCH_SPECS = (
    LayerSpec(16, 16, 32, 32, 3, 1),
    LayerSpec(64, 64, 32, 32, 3, 1),
    LayerSpec(128, 128, 16, 16, 3, 1),
    LayerSpec(64, 128, 32, 32, 1, 2),
    LayerSpec(256, 256, 8, 8, 3, 1),
)
REPEAT_SPEC = LayerSpec(64, 64, 32, 32, 3, 1)
REPEAT_GENOME = LayerGenome.from_json([
    {"gene": "tile", "axis": "ow", "factor": 16}, {"gene": "tile", "axis": "co", "factor": 4},
    {"gene": "vectorize", "axis": "ow"}, {"gene": "cache_write"},
    {"gene": "fuse", "depth": 2}, {"gene": "parallel"},
])


@dataclass(frozen=True)
class Throughput:
    jobs: int
    programs: int
    errors: int
    seconds: float
    startup_s: float
    build_s: float
    timing_s: float

    @property
    def per_hour(self) -> float:
        return 3600.0 * self.programs / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Repeatability:
    medians_ms: tuple[float, ...]
    other_loads: tuple[float, ...]
    flagged: tuple[bool, ...]
    threads: int | None

    @property
    def spread(self) -> float:
        median = statistics.median(self.medians_ms)
        return (max(self.medians_ms) - min(self.medians_ms)) / median


def random_jobs(rng: np.random.Generator, count: int, seen: set) -> list[LayerJob]:
    """`count` jobs with distinct keys (also distinct from `seen`), specs in turn."""
    jobs: list[LayerJob] = []
    while len(jobs) < count:
        spec = BENCH_SPECS[len(seen) % len(BENCH_SPECS)]
        job = LayerJob(spec, random_layer_genome(rng, spec, int(rng.integers(2, 9))))
        if job.key not in seen:
            seen.add(job.key)
            jobs.append(job)
    return jobs


def measure_throughput(jobs: int, layers: int, seconds: float, seed: int = 0,
                       target: str | None = None, threads: int | None = None,
                       log: Callable[[str], None] = print) -> Throughput:
    """Build and measure up to `layers` new programs (or for `seconds`) with `jobs` builders."""
    from evo.measure.tvm_evaluator import TvmEvaluator

    rng = np.random.default_rng(seed)
    seen: set = set()
    batch = 8 * jobs
    with tempfile.TemporaryDirectory() as folder:
        evaluator = TvmEvaluator(target=target, jobs=jobs, threads=threads,
                                 cache_path=Path(folder, "bench.sqlite"))
        try:
            start = time.monotonic()
            evaluator.measure(random_jobs(rng, jobs, seen))  # start workers and timer process
            startup = time.monotonic() - start
            done = errors = 0
            before = dict(evaluator.seconds)
            start = time.monotonic()
            while done < layers and time.monotonic() - start < seconds:
                results = evaluator.measure(random_jobs(rng, min(batch, layers - done), seen))
                done += len(results)
                errors += sum(not r.ok for r in results)
                log(f"  jobs={jobs}: {done} programs, {errors} errors, "
                    f"{time.monotonic() - start:.0f} s")
            elapsed = time.monotonic() - start
            spent = {k: evaluator.seconds[k] - before[k] for k in before}
        finally:
            evaluator.close()
    return Throughput(jobs, done - errors, errors, elapsed, startup, spent["build"],
                      spent["timing"])


def measure_repeatability(repeats: int, target: str | None = None, threads: int | None = None
                          ) -> tuple[Repeatability, Repeatability]:
    """Build `REPEAT_GENOME` on `REPEAT_SPEC` once and time it `repeats` times, alternating
    with `repeats` timings of the host's fixed work; returns (program, host floor)."""
    from evo.measure.build import BuildRequest, build_task
    from evo.measure.evaluator import available_cores
    from evo.measure.host_floor import time_host_floor
    from evo.measure.runner import MeasurementProcess
    from evo.measure.timing import TimingPolicy
    from evo.target import make_target, target_key

    request = BuildRequest(REPEAT_SPEC.to_json(), REPEAT_GENOME.to_json(),
                           target_key(make_target(target)), 120.0)
    built = build_task(request)
    if built.error is not None:
        raise RuntimeError(f"the benchmark program did not build: {built.error}")
    policy = TimingPolicy()
    process = MeasurementProcess(None, threads or available_cores(), policy)
    replies, floor = [], []
    with tempfile.TemporaryDirectory() as folder:
        library = Path(folder, "program.so")
        library.write_bytes(built.library)
        try:
            for _ in range(repeats):
                reply = process.time(library, REPEAT_SPEC.to_json(), REPEAT_GENOME.to_json())
                if reply.get("error"):
                    raise RuntimeError(f"the benchmark program did not run: {reply['error']}")
                replies.append(reply)
                floor.append(time_host_floor(policy))
        finally:
            process.stop()
    program = Repeatability(tuple(r["median_ms"] for r in replies),
                            tuple(r["other_load"] for r in replies),
                            tuple(r["flagged"] for r in replies), process.device_threads)
    host = Repeatability(tuple(t.median_ms for t in floor), tuple(t.other_load for t in floor),
                         tuple(t.flagged for t in floor), 1)
    return program, host
