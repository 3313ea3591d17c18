"""Beyond one process: timing through a real TVM RPC tracker and server, and builds on
a real Dask cluster (scheduler and worker processes), all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from evo.errors import InfrastructureError, UsageError
from evo.measure import LayerJob, make_evaluator
from evo.measure.build import FAULT_ENV
from genomes.genome import LayerGenome
from genomes.spec import LayerSpec

SPEC = LayerSpec(8, 8, 8, 8, 3, 1)
TILED = LayerGenome.from_json([{"gene": "tile", "axis": "ow", "factor": 4},
                               {"gene": "vectorize", "axis": "ow"}])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*args: str) -> subprocess.Popen:
    """A `python -m ...` process in its own session, so the whole group can be stopped."""
    return subprocess.Popen([sys.executable, "-m", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def rpc_tracker(rpc_processes) -> str:
    """A tracker and one server registered under key `evo-test`: the runner URL."""
    return rpc_processes[0]


@pytest.fixture
def rpc_processes() -> Iterator[tuple[str, subprocess.Popen, subprocess.Popen]]:
    """A tracker and one server registered under key `evo-test`; yields the runner URL,
    the tracker process and the server process."""
    from tvm import rpc

    tracker_port, server_port = free_port(), free_port()
    tracker = start("tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(tracker_port),
                    "--port-end", str(tracker_port + 1), "--silent")
    server = start("tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(server_port),
                   "--port-end", str(server_port + 1), "--tracker",
                   f"127.0.0.1:{tracker_port}", "--key", "evo-test", "--silent")
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                queue = rpc.connect_tracker("127.0.0.1", tracker_port).summary()["queue_info"]
                if queue.get("evo-test", {}).get("free"):
                    break
            except (OSError, RuntimeError):
                pass
            assert time.monotonic() < deadline, "the RPC server never registered"
            assert tracker.poll() is None and server.poll() is None
            time.sleep(0.5)
        yield f"rpc://127.0.0.1:{tracker_port}/evo-test", tracker, server
    finally:
        stop(server)
        stop(tracker)


def test_rpc_runner_times_on_the_remote_device(rpc_tracker, tmp_path):
    evaluator = make_evaluator("tvm", jobs=1, runner=rpc_tracker, threads=1,
                               cache_path=tmp_path / "c.sqlite")
    try:
        jobs = [LayerJob(SPEC, LayerGenome()), LayerJob(SPEC, TILED)]
        results = evaluator.measure(jobs)
        assert all(r.ok for r in results), [r.error for r in results]
        assert all(r.repeats >= 5 and r.threads == 1 for r in results)
        assert evaluator.context().device == "rpc:evo-test"
        again = evaluator.measure(jobs)
        assert all(r.cached for r in again)
    finally:
        evaluator.close()
    local = make_evaluator("analytic", threads=1, cache_path=tmp_path / "c.sqlite")
    assert not any(r.cached for r in local.measure(jobs))  # other device, other key
    local.close()


def test_rpc_runner_without_a_tracker_is_not_a_candidates_result(monkeypatch):
    port = free_port()  # nothing listens here
    runner = f"rpc://127.0.0.1:{port}/none"
    unreachable = (f"measurement device: ConnectionError: cannot reach the RPC tracker at "
                   f"127.0.0.1:{port} (Connection refused)")
    monkeypatch.setenv("EVO_RETRY_DELAYS", "0")
    evaluator = make_evaluator("tvm", jobs=1, runner=runner, threads=1)
    try:
        with pytest.raises(InfrastructureError) as failed:
            evaluator.measure([LayerJob(SPEC, LayerGenome())])
    finally:
        evaluator.close()
    assert str(failed.value) == ("timing keeps failing, not because of a candidate: "
                                 + unreachable)
    with pytest.raises(UsageError) as refused:  # the preflight says it before anything
        make_evaluator("tvm", jobs=1, runner=runner, threads=1, preflight=True)
    assert str(refused.value) == f"cannot time: a tiny reference conv failed: {unreachable}"


def test_rpc_device_gone_mid_measurement_stops_it(rpc_processes, monkeypatch):
    """Server and tracker stop between two programs: the next one is not given an error
    value; after the retries the evaluator raises InfrastructureError."""
    runner, tracker, server = rpc_processes
    monkeypatch.setenv("EVO_RETRY_DELAYS", "0.2")
    evaluator = make_evaluator("tvm", jobs=1, runner=runner, threads=1, preflight=True)
    try:
        (first,) = evaluator.measure([LayerJob(SPEC, LayerGenome())])
        assert first.ok, first.error
        stop(server)
        stop(tracker)
        with pytest.raises(InfrastructureError, match="timing keeps failing, not because of "
                                                      "a candidate: measurement device: "
                                                      "ConnectionError: cannot reach the RPC"):
            evaluator.measure([LayerJob(SPEC, TILED)])
    finally:
        evaluator.close()


def _imported_the_builder() -> bool:
    return "evo.measure.build" in sys.modules


def test_dask_backend_builds_on_cluster_workers(monkeypatch):
    from distributed import LocalCluster

    crash = LayerGenome.from_json([{"gene": "tile", "axis": "ow", "factor": 2}])
    monkeypatch.setenv(FAULT_ENV, f"{crash.hash()}=crash")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        # a generous build timeout: a fresh worker imports TVM first, slow on a busy machine
        evaluator = make_evaluator("tvm", backend="dask", scheduler=cluster.scheduler_address,
                                   build_timeout_s=300)
        try:
            results = evaluator.measure([LayerJob(SPEC, g) for g in (LayerGenome(), TILED,
                                                                      crash)])
            built_there = evaluator._client.run(_imported_the_builder)
        finally:
            evaluator.close()
    assert results[0].ok and results[1].ok, [r.error for r in results]
    assert results[2].error == "build crashed: killed by SIGSEGV"
    assert list(built_there.values()) == [True]  # the one worker process ran the builds
