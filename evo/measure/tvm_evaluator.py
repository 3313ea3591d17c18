"""The `tvm` evaluator: parallel sandboxed builds, then serial timing, chunk by chunk.

For each chunk of new jobs: genomes that do not decode become errors at once;
the rest are built in parallel (`evo.measure.build`, joblib loky or Dask); when
every build of the chunk is done, the libraries are timed one by one in the
measurement process (`evo.measure.runner`), locally or through an RPC tracker.
Builds and timing never overlap, so timing runs with nothing else of ours busy.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from evo.errors import UsageError
from evo.measure.build import BuildRequest, BuildResult, build_all, faults_from_env
from evo.measure.cache import CacheContext
from evo.measure.device import parse_runner
from evo.measure.evaluator import CachingEvaluator, available_cores
from evo.measure.runner import MeasurementProcess
from evo.measure.timing import TimingPolicy
from evo.measure.types import LayerJob, LayerMeasurement
from genomes.genome import decode_layer

CHUNK = 64


class TvmEvaluator(CachingEvaluator):
    """Real latency of layer programs, measured with TVM (see the module docstring)."""

    name = "tvm"

    def __init__(self, target: str | dict | None = None, jobs: int | None = None,
                 cache_path: str | Path | None = None, runner: str | None = None,
                 backend: str = "loky", scheduler: str | None = None,
                 build_timeout_s: float = 60.0, threads: int | None = None,
                 policy: TimingPolicy | None = None, measure_timeout_s: float = 120.0) -> None:
        import tvm

        from evo.target import make_target, target_key

        if backend not in ("loky", "dask"):
            raise UsageError(f"--backend {backend!r}: choose loky or dask")
        if backend == "dask" and not scheduler:
            raise UsageError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        if jobs is not None and jobs < 1:
            raise UsageError(f"--jobs {jobs}: must be >= 1")
        if threads is not None and threads < 1:
            raise UsageError(f"--threads {threads}: must be >= 1")
        if build_timeout_s <= 0:
            raise UsageError(f"build timeout {build_timeout_s}: must be > 0")
        try:
            address = parse_runner(runner)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.target_key = target_key(make_target(target))
        super().__init__(cache_path)
        self.tvm_version = tvm.__version__
        self.jobs = jobs or available_cores()
        self.backend = backend
        self.build_timeout_s = build_timeout_s
        self.device_name = "local" if address is None else f"rpc:{address.key}"
        self.threads = threads if threads or address is not None else available_cores()
        self._client = _dask_client(scheduler) if backend == "dask" else None
        self._process = MeasurementProcess(runner, self.threads, policy or TimingPolicy(),
                                           timeout_s=measure_timeout_s)
        self._folder = tempfile.TemporaryDirectory(prefix="evo-measure-")
        self._libraries = 0
        self.seconds = {"build": 0.0, "timing": 0.0}  # wall time spent in each phase

    def context(self) -> CacheContext:
        return CacheContext(self.target_key, self.tvm_version, self._recorded_threads(),
                            self.name, self.device_name)

    def _recorded_threads(self) -> int:
        """The requested thread count, or the remote device's default (asked once)."""
        if self.threads is None and self._process.device_threads is None:
            error = self._process.start()
            if error is not None:
                raise UsageError(error)
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
        requests = [BuildRequest(job.spec.to_json(), job.genome.to_json(), self.target_key,
                                 self.build_timeout_s, faults.get(job.genome.hash()))
                    for job in buildable]
        start = time.monotonic()
        built: dict[int, BuildResult] = dict(build_all(requests, self.jobs, self.backend))
        self.seconds["build"] += time.monotonic() - start
        for index, job in enumerate(buildable):
            start = time.monotonic()
            result = self._time(job, built[index])
            self.seconds["timing"] += time.monotonic() - start
            yield job, result

    def _time(self, job: LayerJob, build: BuildResult) -> LayerMeasurement:
        if build.error is not None:
            return LayerMeasurement.failed(build.error, self.threads)
        # a fresh name each time: loading a path already loaded would reuse the old library
        self._libraries += 1
        library = Path(self._folder.name, f"program-{os.getpid()}-{self._libraries}.so")
        library.write_bytes(build.library)
        try:
            reply = self._process.time(library, job.spec.to_json(), job.genome.to_json())
        finally:
            library.unlink(missing_ok=True)
        threads = self.threads or self._process.device_threads
        if reply.get("error"):
            return LayerMeasurement.failed(reply["error"], threads)
        return LayerMeasurement(reply["median_ms"], reply["spread"], reply["repeats"], threads,
                                flagged=reply["flagged"])

    def close(self) -> None:
        self._process.stop()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._folder.cleanup()
        super().close()


def _dask_client(scheduler: str):
    """A client of the Dask scheduler at `scheduler`; joblib's dask backend uses it."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--backend dask needs dask.distributed "
                         "(pip install 'evo-nas[dask]')") from None
    try:
        return Client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
