"""The `tvm` evaluator: parallel sandboxed builds, then serial timing, chunk by chunk.

For each chunk of new jobs: genomes that do not decode become errors at once;
the rest are built in parallel (`evo.measure.build`, on loky or Dask workers,
`evo.measure.pool`); when every build of the chunk is done, the libraries are
timed one by one in the measurement process (`evo.measure.runner`), locally or
through an RPC tracker. Builds and timing never overlap, so timing runs with
nothing else of ours busy.

A failure of the machinery is never stored as a candidate's result
(`evo.measure.machinery`): a broken worker pool, a timing device that does not
start, and a failure that may be either the machinery's or the candidate's (an
export error, a lost RPC session) once a tiny reference conv fails too, are
retried after each of `retry_delays_s` (default `EVO_RETRY_DELAYS` or 5, 30 and
60 s); if they persist, `measure` raises InfrastructureError. `preflight` checks
the machinery before anything is measured.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from evo import options
from evo.errors import InfrastructureError, UsageError
from evo.measure.build import BuildRequest, BuildResult, blame_unclear, faults_from_env
from evo.measure.cache import CacheContext
from evo.measure.device import parse_runner
from evo.measure.evaluator import CachingEvaluator, available_cores
from evo.measure.machinery import (
    REFERENCE,
    compiler_problem,
    dask_workers_problem,
    one_line,
    retry_delays,
)
from evo.measure.pool import PoolFailure, build_all, stop_local_workers
from evo.measure.runner import MeasurementProcess
from evo.measure.timing import TimingPolicy
from evo.measure.types import LayerJob, LayerMeasurement
from genomes.genome import decode_layer
from genomes.tvm_decoder import PROGRAM_VERSION

CHUNK = 64


class TvmEvaluator(CachingEvaluator):
    """Real latency of layer programs, measured with TVM (see the module docstring)."""

    name = "tvm"

    def __init__(self, target: str | dict | None = None, jobs: int | None = None,
                 cache_path: str | Path | None = None, runner: str | None = None,
                 backend: str = "loky", scheduler: str | None = None,
                 build_timeout_s: float = 60.0, threads: int | None = None,
                 policy: TimingPolicy | None = None, measure_timeout_s: float = 120.0,
                 preflight: bool = False,
                 retry_delays_s: tuple[float, ...] | None = None) -> None:
        import tvm

        from evo.measure import check_measurement_options
        from evo.target import make_target, target_key

        check_measurement_options("tvm", runner, backend, scheduler)
        if jobs is not None:
            options.JOBS.check("--jobs", jobs)
        if threads is not None:
            options.THREADS.check("--threads", threads)
        options.BUILD_TIMEOUT_S.check("--build-timeout", build_timeout_s)
        address = parse_runner(runner)
        self.target_key = target_key(make_target(target))
        self.cache = None  # opened after the preflight (CachingEvaluator)
        # TVM's version and the decoder's: either changes the programs measured
        self.tvm_version = f"{tvm.__version__}+programs{PROGRAM_VERSION}"
        self.jobs = jobs or available_cores()
        self.backend = backend
        self.scheduler = scheduler
        self.build_timeout_s = build_timeout_s
        self.retry_delays_s = retry_delays() if retry_delays_s is None else retry_delays_s
        self.device_name = "local" if address is None else f"rpc:{address.key}"
        self.threads = threads if threads or address is not None else available_cores()
        self._process = MeasurementProcess(runner, self.threads, policy or TimingPolicy(),
                                           timeout_s=measure_timeout_s)
        self._folder = tempfile.TemporaryDirectory(prefix="evo-measure-")
        self._client = None
        self._reference: bytes | None = None  # the reference conv's library, once built
        self._libraries = 0
        self.seconds = {"build": 0.0, "timing": 0.0}  # wall time spent in each phase
        try:
            self._client = _dask_client(scheduler) if backend == "dask" else None
            if preflight:
                self.preflight()
        except BaseException:
            self._stop_helpers()
            raise
        super().__init__(cache_path)

    def preflight(self) -> None:
        """Check the machinery before any candidate: the C++ compiler (local builds), a
        worker in the Dask cluster, and a tiny reference conv built in a real worker and
        timed on the real device. Raises UsageError with one line saying what failed."""
        if self.backend == "loky" and (problem := compiler_problem()):
            raise UsageError(f"cannot build: {problem}")
        if self._client is not None and (
                problem := dask_workers_problem(self._client, self.scheduler)):
            raise UsageError(problem)
        if problem := self._reference_problem():
            raise UsageError(problem)

    def context(self) -> CacheContext:
        return CacheContext(self.target_key, self.tvm_version, self._recorded_threads(),
                            self.name, self.device_name)

    def _recorded_threads(self) -> int:
        """The requested thread count, or the remote device's default (asked once)."""
        if self.threads is None and self._process.device_threads is None:
            error = self._process.start()
            if error is not None:
                raise InfrastructureError(f"cannot time: {error}")
        return self.threads or self._process.device_threads

    def _measure_new(self, jobs: list[LayerJob]) -> Iterator[tuple[LayerJob, LayerMeasurement]]:
        for start in range(0, len(jobs), CHUNK):
            yield from self._measure_chunk(jobs[start:start + CHUNK])

    def _measure_chunk(self, jobs: list[LayerJob]
                       ) -> Iterator[tuple[LayerJob, LayerMeasurement]]:
        faults = faults_from_env()
        buildable = []
        for job in jobs:
            decoded = decode_layer(job.spec, job.genome)
            if decoded.ok:
                buildable.append(job)
            else:
                yield job, LayerMeasurement.failed(f"decode: {decoded.error}", self.threads)
        requests = [self._request(job, faults.get(job.genome.hash())) for job in buildable]
        start = time.monotonic()
        built = self._build_checked(requests)
        self.seconds["build"] += time.monotonic() - start
        for index, job in enumerate(buildable):
            start = time.monotonic()
            result = self._time_checked(job, built[index])
            self.seconds["timing"] += time.monotonic() - start
            yield job, result

    def _request(self, job: LayerJob, fault: str | None = None) -> BuildRequest:
        return BuildRequest(job.spec.to_json(), job.genome.to_json(), self.target_key,
                            self.build_timeout_s, fault)

    def _build_checked(self, requests: list[BuildRequest]) -> dict[int, BuildResult]:
        """Every request built; a failure of the pool, or failures the reference conv
        shares, are retried; raises InfrastructureError when they persist."""
        results: dict[int, BuildResult] = {}
        todo = list(range(len(requests)))
        for delay in (*self.retry_delays_s, None):
            try:
                for k, result in build_all([requests[i] for i in todo], self.jobs,
                                           self.backend, self._client):
                    results[todo[k]] = result
                if not any(blame_unclear(results[i].error) for i in todo):
                    return results
                problem = self._reference_problem()
                if problem is None:  # the machinery works: the failures are the candidates'
                    return results
            except PoolFailure as exc:
                problem = str(exc)
            todo = [i for i in todo if i not in results or blame_unclear(results[i].error)]
            self._retry_or_give_up("builds keep failing", problem, delay)
        raise AssertionError("unreachable")

    def _time_checked(self, job: LayerJob, build: BuildResult) -> LayerMeasurement:
        """Time one built program; a failure of the timing device is retried (and raises
        InfrastructureError when it persists), never returned as the program's."""
        if build.error is not None:
            return LayerMeasurement.failed(build.error, self.threads)
        for delay in (*self.retry_delays_s, None):
            reply = self._time_library(build.library, job)
            if reply.get("blame") is None:
                break
            problem = reply["error"]
            if reply["blame"] == "unclear":  # a lost RPC session: the program's doing?
                problem = self._reference_problem(build=False)
                if problem is None:
                    break
            self._retry_or_give_up("timing keeps failing", problem, delay)
        threads = self.threads or self._process.device_threads
        if reply.get("error"):
            return LayerMeasurement.failed(reply["error"], threads)
        return LayerMeasurement(reply["median_ms"], reply["spread"], reply["repeats"], threads,
                                flagged=reply["flagged"])

    def _reference_problem(self, build: bool = True) -> str | None:
        """None when the reference conv builds (unless `build` is False and it was built
        before) and times, else what failed, in one line."""
        if build or self._reference is None:
            try:
                ((_, built),) = list(build_all([self._request(REFERENCE)], self.jobs,
                                               self.backend, self._client))
            except PoolFailure as exc:
                return f"cannot build: {exc}"
            if built.error is not None:
                return f"cannot build: a tiny reference conv failed: {one_line(built.error)}"
            self._reference = built.library
        reply = self._time_library(self._reference, REFERENCE)
        if reply.get("error"):
            return f"cannot time: a tiny reference conv failed: {one_line(reply['error'])}"
        return None

    def _retry_or_give_up(self, what: str, problem: str, delay: float | None) -> None:
        if delay is None:
            raise InfrastructureError(f"{what}, not because of a candidate: {problem}")
        print(f"evo: the measuring machinery failed ({problem}); retrying in {delay:g} s",
              file=sys.stderr, flush=True)
        if what.startswith("timing"):
            self._process.stop(kill=True)  # a fresh measurement process and connection
        time.sleep(delay)

    def _time_library(self, library_bytes: bytes, job: LayerJob) -> dict:
        """The measurement process's reply for one library (see `MeasurementProcess`)."""
        # a fresh name each time: loading a path already loaded would reuse the old library
        self._libraries += 1
        library = Path(self._folder.name, f"program-{os.getpid()}-{self._libraries}.so")
        library.write_bytes(library_bytes)
        try:
            return self._process.time(library, job.spec.to_json(), job.genome.to_json())
        finally:
            library.unlink(missing_ok=True)

    def _stop_helpers(self) -> None:
        if self.backend == "loky":
            stop_local_workers()
        self._process.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._folder.cleanup()

    def close(self) -> None:
        self._stop_helpers()
        super().close()


def _dask_client(scheduler: str):
    """A client of the Dask scheduler at `scheduler`; the builds are its tasks."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--backend dask needs dask.distributed "
                         "(pip install 'evo-nas[dask]')") from None
    try:
        return Client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
