"""Measurement: both evaluators' results, the timing protocol, and the SQLite cache.

Uses real TVM builds and timing, real SQLite files and real subprocesses. Never
asserts a speed: only shapes, determinism, ordering, and cache behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import fields

import pytest

from evo.errors import UsageError
from evo.measure import LayerJob, LayerMeasurement, make_evaluator
from evo.measure.cache import CacheContext, MeasurementCache
from evo.measure.timing import TimingPolicy, spread_of, time_program
from genomes.genome import LayerGenome
from genomes.spec import LayerSpec

SPEC = LayerSpec(16, 16, 8, 8, 3, 1)
GOOD = LayerGenome.from_json([{"gene": "tile", "axis": "ow", "factor": 8},
                              {"gene": "vectorize", "axis": "ow"}, {"gene": "cache_write"}])
PLAIN = LayerGenome()
BAD = LayerGenome.from_json([{"gene": "split_rows", "parts": 3}])  # 8 rows do not split in 3


def jobs_with_duplicates() -> list[LayerJob]:
    return [LayerJob(SPEC, GOOD), LayerJob(SPEC, PLAIN), LayerJob(SPEC, BAD),
            LayerJob(SPEC, GOOD)]


@pytest.fixture(scope="module")
def tvm_evaluator():
    evaluator = make_evaluator("tvm", jobs=2)
    yield evaluator
    evaluator.close()


def check_result_shape(results: list[LayerMeasurement], jobs: list[LayerJob]) -> None:
    assert len(results) == len(jobs)
    for job, result in zip(jobs, results, strict=True):
        assert isinstance(result, LayerMeasurement)
        assert isinstance(result.threads, int) and result.threads >= 1
        if job.genome is BAD:
            assert not result.ok and result.error.startswith("decode: ")
            assert result.median_ms is None and result.spread is None
        else:
            assert result.ok, result.error
            assert result.median_ms > 0 and result.spread >= 0 and result.repeats >= 1


def test_tvm_and_analytic_results_have_the_same_shape(tvm_evaluator):
    jobs = jobs_with_duplicates()
    analytic = make_evaluator("analytic")
    progress: list[int] = []
    by_tvm = tvm_evaluator.measure(jobs, progress=progress.append)
    by_model = analytic.measure(jobs)
    for results in (by_tvm, by_model):
        check_result_shape(results, jobs)
        assert results[0] == results[3]  # the duplicate is the same measurement
    assert sum(progress) == len(jobs)
    assert by_tvm[0].repeats >= 5  # the timing protocol's minimum
    assert [f.name for f in fields(by_tvm[0])] == [f.name for f in fields(by_model[0])]
    assert [r.ok for r in by_tvm] == [r.ok for r in by_model]
    assert by_tvm[0].threads == by_model[0].threads
    assert by_model[0].spread == 0.0


def test_tvm_evaluator_measures_a_duplicate_once(tvm_evaluator, tmp_path):
    evaluator = make_evaluator("tvm", jobs=1, cache_path=tmp_path / "c.sqlite")
    try:
        results = evaluator.measure([LayerJob(SPEC, PLAIN)] * 3)
        assert len({id(r) for r in results}) == 1
        assert evaluator.cache.count() == 1
    finally:
        evaluator.close()


def test_analytic_is_deterministic_across_processes():
    jobs = jobs_with_duplicates()
    here = [r.median_ms for r in make_evaluator("analytic", threads=2).measure(jobs)]
    script = textwrap.dedent("""
        import json, sys
        from evo.measure import LayerJob, make_evaluator
        from genomes.genome import LayerGenome
        from genomes.spec import LayerSpec
        spec_json, genome_json = json.loads(sys.argv[1])
        jobs = [LayerJob(LayerSpec.from_json(spec_json), LayerGenome.from_json(g))
                for g in genome_json]
        results = make_evaluator("analytic", threads=2).measure(jobs)
        print(json.dumps([r.median_ms for r in results]))
    """)
    payload = json.dumps([SPEC.to_json(), [j.genome.to_json() for j in jobs]])
    there = json.loads(subprocess.run([sys.executable, "-c", script, payload],
                                      capture_output=True, text=True, check=True).stdout)
    assert here == there


def analytic_ms(spec: LayerSpec, genes: list[dict], threads: int = 2) -> float:
    (result,) = make_evaluator("analytic", threads=threads).measure(
        [LayerJob(spec, LayerGenome.from_json(genes))])
    assert result.ok, result.error
    return result.median_ms


def test_analytic_rewards_genes_that_help_and_penalises_pathological_ones():
    spec = LayerSpec(64, 64, 32, 32, 3, 1)
    tile = [{"gene": "tile", "axis": "ow", "factor": 16}, {"gene": "tile", "axis": "co",
                                                            "factor": 4}]
    vec = [{"gene": "vectorize", "axis": "ow"}]
    cw = [{"gene": "cache_write"}]
    par = [{"gene": "fuse", "depth": 2}, {"gene": "parallel"}]
    naive = analytic_ms(spec, [])
    assert analytic_ms(spec, vec) == pytest.approx(naive, rel=0.01)  # inner tile 1: no vectors
    assert analytic_ms(spec, tile + vec) < naive / 4
    assert analytic_ms(spec, tile + vec + cw) < analytic_ms(spec, tile + vec)
    tuned = analytic_ms(spec, tile + vec + cw)
    assert analytic_ms(spec, tile + vec + cw + par) < 0.7 * tuned
    # unfused, parallel runs the batch loop (extent 1): only the padding copy gains
    assert analytic_ms(spec, tile + vec + cw + [{"gene": "parallel"}]) > 0.9 * tuned
    big_tile = [{"gene": "tile", "axis": "co", "factor": 64}, {"gene": "tile", "axis": "ow",
                                                                "factor": 32}]
    assert analytic_ms(spec, big_tile + vec + cw) > analytic_ms(spec, tile + vec + cw)  # spills
    assert analytic_ms(spec, tile + vec + cw + [{"gene": "inline_pad"}]) > \
        2 * analytic_ms(spec, tile + vec + cw)
    assert analytic_ms(spec, tile + vec + cw + par + [{"gene": "tile_pad"}]) < \
        analytic_ms(spec, tile + vec + cw + par)
    assert analytic_ms(spec, [{"gene": "group", "groups": 4}]) < naive / 3


def test_timing_protocol_keeps_the_median_and_flags_a_wide_spread():
    calls: list[tuple[int, int]] = []

    def steady(number: int, repeat: int) -> tuple[list[float], float]:
        calls.append((number, repeat))
        if number == 1 and repeat == 1:
            return [0.004], 0.0
        return [0.002, 0.00205, 0.002, 0.00195, 0.002], 0.0

    timing = time_program(steady, TimingPolicy(min_repeat_ms=20, repeats=5))
    assert calls == [(1, 1), (5, 5)]  # 4 ms runs: 5 per repeat reach 20 ms
    assert timing.median_ms == pytest.approx(2.0)
    assert timing.spread == pytest.approx(0.05) and not timing.flagged

    def noisy(number: int, repeat: int) -> tuple[list[float], float]:
        return ([0.001] if repeat == 1 else [0.001, 0.002, 0.001, 0.001, 0.003]), 0.0

    timing = time_program(noisy, TimingPolicy(spread_limit=0.1))
    assert timing.remeasured and timing.flagged and timing.median_ms == pytest.approx(1.0)
    assert spread_of([1.0, 1.0, 1.0]) == 0.0


def test_timing_protocol_remeasures_when_other_processes_were_busy():
    loads = iter([0.0, 0.6, 0.05])  # warm-up, a disturbed set, a quiet set

    def busy_then_quiet(number: int, repeat: int) -> tuple[list[float], float]:
        load = next(loads)
        return [0.002 if load > 0.5 else 0.001] * repeat, load

    timing = time_program(busy_then_quiet, TimingPolicy())
    assert timing.remeasured and not timing.flagged
    assert timing.median_ms == pytest.approx(1.0) and timing.other_load == 0.05

    def always_busy(number: int, repeat: int) -> tuple[list[float], float]:
        return [0.001] * repeat, 0.5

    timing = time_program(always_busy, TimingPolicy())
    assert timing.flagged and timing.spread == 0.0


def test_other_load_sees_processes_that_compete_for_the_cpus():
    from evo.measure.interference import OtherLoad

    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        time.sleep(0.5)
        with OtherLoad() as load:
            time.sleep(1.0)
    finally:
        for spinner in spinners:
            spinner.wait()
    assert load.share > 0.25  # two busy processes on this machine's CPUs


def test_slow_programs_get_fewer_repeats_but_never_below_the_minimum():
    policy = TimingPolicy()  # 20 repeats of >= 10 ms, within 0.5 s, at least 5
    assert policy.repeats_for(10.0) == 20 and policy.repeats_for(25.0) == 20
    assert policy.repeats_for(30.0) == 16
    assert policy.repeats_for(70.0) == 7
    assert policy.repeats_for(900.0) == 5
    calls: list[tuple[int, int]] = []

    def slow(number: int, repeat: int) -> tuple[list[float], float]:
        calls.append((number, repeat))
        return [0.3] * repeat, 0.0

    assert time_program(slow, policy).repeats == 5 and calls == [(1, 1), (1, 5)]


def test_host_floor_times_the_same_work_with_the_protocol():
    from evo.measure.host_floor import fixed_work, time_fixed_work, time_host_floor

    assert fixed_work(1000) == sum(i * i for i in range(1000))
    seconds, load = time_fixed_work(2, 4)
    assert len(seconds) == 4 and min(seconds) > 0 and 0 <= load <= 1
    policy = TimingPolicy(min_repeat_ms=5, repeats=6)
    timing = time_host_floor(policy)
    assert timing.median_ms > 0 and timing.repeats == 6
    # each repeat runs `number` calls sized to take ~5 ms when calibrated; on a shared VM
    # the repeats can run several times faster or slower than the calibration did
    assert timing.number >= 1 and timing.number * timing.median_ms > 0


def test_cache_keys_separate_threads_and_evaluators(tmp_path):
    cache = MeasurementCache(tmp_path / "sub" / "c.sqlite")
    job = LayerJob(SPEC, GOOD)
    two = CacheContext("llvm", "0.27", 2, "tvm")
    cache.store(two, job, LayerMeasurement(1.5, 0.01, 5, 2))
    assert cache.lookup(two, [job])[job.key] == LayerMeasurement(1.5, 0.01, 5, 2, cached=True)
    assert cache.lookup(CacheContext("llvm", "0.27", 1, "tvm"), [job]) == {}
    assert cache.lookup(CacheContext("llvm", "0.27", 2, "analytic"), [job]) == {}
    assert cache.lookup(CacheContext("llvm", "0.28", 2, "tvm"), [job]) == {}
    assert cache.lookup(CacheContext("llvm", "0.27", 2, "tvm", "rpc:x"), [job]) == {}
    cache.close()


def test_a_corrupt_cache_file_is_a_usage_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UsageError, match="cannot open"):
        make_evaluator("analytic", cache_path=path)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"kind": "fast"}, "--evaluator"),
    ({"kind": "tvm", "runner": "tcp://x"}, "rpc://HOST:PORT/KEY"),
    ({"kind": "tvm", "backend": "dask"}, "--scheduler"),
    ({"kind": "tvm", "jobs": 0}, "--jobs"),
    ({"kind": "tvm", "target": "{bad"}, "--target"),
])
def test_bad_options_are_usage_errors(kwargs, fragment):
    from evo.errors import user_error_types

    with pytest.raises(user_error_types(), match=fragment):
        make_evaluator(**kwargs)


WRITER = textwrap.dedent("""
    import sys
    from evo.measure import LayerJob, make_evaluator
    from genomes.genome import LayerGenome
    from genomes.spec import LayerSpec
    path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    evaluator = make_evaluator("analytic", cache_path=path)
    for size in range(first, first + count):
        spec = LayerSpec(size, size, 8, 8, 3, 1)
        (result,) = evaluator.measure([LayerJob(spec, LayerGenome())])
        assert result.ok and not result.cached
    evaluator.close()
""")


def test_cache_is_shared_by_concurrent_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(first), "150"])
               for first in (1, 151)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    evaluator = make_evaluator("analytic", cache_path=path)
    jobs = [LayerJob(LayerSpec(size, size, 8, 8, 3, 1), LayerGenome()) for size in (1, 200, 300)]
    results = evaluator.measure(jobs)
    assert all(r.cached and r.ok for r in results)
    assert evaluator.cache.count() == 300
    evaluator.close()

