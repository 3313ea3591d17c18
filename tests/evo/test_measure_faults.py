"""A build that crashes its process or hangs costs one result, never the run.

The faults are real: through `EVO_MEASURE_FAULT` (see `evo.measure.build`) the
build child of a chosen genome kills itself with SIGSEGV or sleeps forever, inside
real joblib worker processes.
"""

from __future__ import annotations

import time

from evo.measure import LayerJob, make_evaluator
from evo.measure.build import FAULT_ENV
from genomes.genome import LayerGenome
from genomes.spec import LayerSpec

SPEC = LayerSpec(8, 8, 8, 8, 3, 1)


def genome(factor: int) -> LayerGenome:
    return LayerGenome.from_json([{"gene": "tile", "axis": "ow", "factor": factor}])


def test_crash_and_hang_become_errors_and_the_run_goes_on(tmp_path, monkeypatch):
    good, crash, hang, oom = genome(2), genome(4), genome(8), genome(16)
    monkeypatch.setenv(FAULT_ENV, f"{crash.hash()}=crash,{hang.hash()}=hang,{oom.hash()}=kill")
    evaluator = make_evaluator("tvm", jobs=2, build_timeout_s=4, cache_path=tmp_path / "c.sqlite")
    try:
        jobs = [LayerJob(SPEC, g) for g in (good, crash, hang, oom)]
        start = time.monotonic()
        results = evaluator.measure(jobs)
        assert time.monotonic() - start < 120
        assert results[0].ok, results[0].error
        assert results[1].error == "build crashed: killed by SIGSEGV"
        assert results[2].error == "build timed out after 4 s"
        assert results[3].error == ("build crashed: killed by SIGKILL "
                                    "(out of memory or CPU limit?)")
        assert all(r.median_ms is None for r in results[1:])
        assert evaluator.cache.count() == 1  # crashes and timeouts are not cached

        monkeypatch.delenv(FAULT_ENV)  # the same evaluator keeps working, and retries them
        again = evaluator.measure(jobs)
        assert again[0].cached and again[0].median_ms == results[0].median_ms
        assert all(r.ok and not r.cached for r in again[1:])
    finally:
        evaluator.close()


def test_single_job_builds_are_isolated_too(monkeypatch):
    """With --jobs 1 the build child forks from the calling process: still isolated."""
    crash = genome(4)
    monkeypatch.setenv(FAULT_ENV, f"{crash.hash()}=crash")
    evaluator = make_evaluator("tvm", jobs=1)
    try:
        results = evaluator.measure([LayerJob(SPEC, crash), LayerJob(SPEC, genome(2))])
    finally:
        evaluator.close()
    assert results[0].error == "build crashed: killed by SIGSEGV"
    assert results[1].ok, results[1].error


def test_a_program_that_never_finishes_running_is_killed(tmp_path):
    """The measurement process has its own timeout; a fresh one serves the next job."""
    from evo.measure.build import BuildRequest, build_task
    from evo.measure.runner import MeasurementProcess
    from evo.measure.timing import TimingPolicy
    from evo.target import make_target, target_key

    slow_spec = LayerSpec(256, 256, 64, 64, 3, 1)  # naive schedule: hundreds of ms a run
    request = BuildRequest(slow_spec.to_json(), [], target_key(make_target()), 60)
    built = build_task(request)
    assert built.error is None
    library = tmp_path / "slow.so"
    library.write_bytes(built.library)
    process = MeasurementProcess(None, 1, TimingPolicy(), timeout_s=0.5)
    try:
        assert process.start() is None
        reply = process.time(library, slow_spec.to_json(), [])
        assert reply["error"].startswith("measurement timed out after 0.5 s")
        process.timeout_s = 60
        fast = tmp_path / "fast.so"
        fast.write_bytes(build_task(BuildRequest(SPEC.to_json(), [], request.target, 60)).library)
        reply = process.time(fast, SPEC.to_json(), [])
        assert reply["error"] is None and reply["median_ms"] > 0
    finally:
        process.stop()
