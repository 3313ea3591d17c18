"""Issue 26, item 1: the measuring machinery is checked before anything is measured.

A missing or broken C++ compiler, a Dask scheduler without workers and an RPC key no
server serves are one line and exit 2 before a run folder (or a cache) is made, for
`evo run` and `evo measure`. All real: a compiler path that does not exist, a
compiler script that fails, a real Dask scheduler and a real TVM RPC tracker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ["run", "--model", "tiny", "--population", "4", "--generations", "1", "--out", "x"]


def evo(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "evo", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_refusal(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0], lines[0]


def failing_compiler(folder: Path) -> Path:
    """A C++ compiler that exists and runs but fails, as a broken toolchain does."""
    script = folder / "broken-g++"
    script.write_text("#!/bin/sh\necho 'g++: fatal error: license expired' >&2\nexit 1\n")
    script.chmod(0o755)
    return script


def test_a_missing_compiler_stops_run_before_it_makes_anything(tmp_path):
    result = evo(*RUN, cwd=tmp_path, env={"CXX": "/nonexistent/g++"})
    assert_one_line_refusal(result, "the C++ compiler '/nonexistent/g++' (from CXX) does not "
                                    "exist")
    assert list(tmp_path.iterdir()) == []  # no run folder, no runs/.cache


def test_a_compiler_that_fails_is_caught_by_the_reference_build(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    compiler = failing_compiler(tmp_path)
    result = evo("measure", "--model", "tiny", cwd=work, env={"CXX": str(compiler)})
    assert_one_line_refusal(result, "cannot build: a tiny reference conv failed: export: ")
    assert "license expired" in result.stderr  # the compiler's own words, from its stderr
    assert list(work.iterdir()) == []


def test_a_dask_scheduler_without_workers_is_one_line(tmp_path, monkeypatch, capsys):
    from distributed import LocalCluster

    from evo.cli import main
    from evo.measure import machinery

    monkeypatch.setattr(machinery, "DASK_WAIT_S", 2.0)
    monkeypatch.chdir(tmp_path)
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        dask = ["--backend", "dask", "--scheduler", cluster.scheduler_address]
        codes = [main(["measure", "--model", "tiny", *dask]), main([*RUN, *dask])]
    assert codes == [2, 2]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("has no worker (waited 2 s)" in line for line in lines)
    assert list(tmp_path.iterdir()) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tracker_port() -> Iterator[int]:
    """A real TVM RPC tracker on 127.0.0.1 with no server registered."""
    from tvm import rpc

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host",
                                "127.0.0.1", "--port", str(port), "--port-end",
                                str(port + 1), "--silent"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError, RuntimeError):
                rpc.connect_tracker("127.0.0.1", port).summary()
                break
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_an_rpc_key_nobody_serves_is_one_line(tracker_port, tmp_path):
    runner = ["--runner", f"rpc://127.0.0.1:{tracker_port}/nobody"]
    expected = f"no RPC server is registered under key 'nobody' at 127.0.0.1:{tracker_port}"
    assert_one_line_refusal(evo("measure", "--model", "tiny", *runner, cwd=tmp_path), expected)
    assert_one_line_refusal(evo(*RUN, *runner, cwd=tmp_path), expected)
    assert list(tmp_path.iterdir()) == []
