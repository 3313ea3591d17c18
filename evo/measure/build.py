"""Build layer programs in parallel, each in a sandbox process with a timeout.

`build_all` hands one `BuildRequest` per program to a pool of worker processes
(loky, on this machine; they ignore a terminal's Ctrl-C, which is the search's to
handle) or, through joblib, to Dask workers elsewhere. The task, `build_task`,
forks a child that decodes the genome, compiles it with TVM and exports a shared
library; the parent waits at most `timeout_s`, kills a child that hangs, and
turns a child that dies (segfault, out-of-memory kill) into an error string. So
one bad candidate costs one result, never the run. The library comes back as
bytes, so builds may happen on another machine.

Test hook: the environment variable `EVO_MEASURE_FAULT` ("HASH=crash,HASH=hang")
names layer-genome hashes whose build child kills itself with SIGSEGV ("crash")
or SIGKILL ("kill", as the out-of-memory killer does) or sleeps forever
("hang"). The evaluator reads it when it builds and sends it with the request,
so it works with every backend. It exists only so the tests can inject real
crashes and hangs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import select
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evo.measure.shield import children_ignore_ctrl_c, ignore_ctrl_c

FAULT_ENV = "EVO_MEASURE_FAULT"
WORKER_IDLE_S = 300  # a build worker idle this long exits (joblib's default for loky)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class BuildRequest:
    """Everything a worker needs to build one program (plain data, picklable)."""

    spec: dict
    genome: list
    target: str
    timeout_s: float
    fault: str | None = None


@dataclass(frozen=True)
class BuildResult:
    """A compiled shared library (`library`) or why there is none (`error`)."""

    library: bytes | None
    error: str | None
    seconds: float


def faults_from_env() -> dict[str, str]:
    """Parse `EVO_MEASURE_FAULT` into {genome hash: "crash" | "kill" | "hang"}."""
    faults = {}
    for item in os.environ.get(FAULT_ENV, "").split(","):
        if "=" in item:
            key, action = item.split("=", 1)
            faults[key.strip()] = action.strip()
    return faults


_FORK_LOCK = threading.Lock()


def build_task(request: BuildRequest) -> BuildResult:
    """Build one program in a forked child; never raises."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="evo-build-") as folder:
        library = Path(folder, "program.so")
        error_file = Path(folder, "error.txt")
        # A worker may run builds in several threads (Dask): a fork while another thread
        # holds the import lock (importing TVM) would leave the child deadlocked.
        with _FORK_LOCK:
            _import_tvm()  # once per worker; the forked children inherit it
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(read_end)
                _child(request, library, error_file, write_end)
        os.close(write_end)
        with contextlib.suppress(OSError):  # also done by the child: no race either way
            os.setpgid(pid, pid)
        error = _wait_for_child(pid, read_end, request.timeout_s)
        os.close(read_end)
        if error is None and error_file.exists():
            error = error_file.read_text()[:500] or "build failed"
        if error is None and not library.exists():
            error = "build produced no library"
        data = library.read_bytes() if error is None else None
    return BuildResult(data, error, time.monotonic() - start)


def _import_tvm() -> None:
    """Import TVM once per worker, without letting tvm_ffi import torch (seconds of
    start-up and hundreds of MB a worker, never used here); torch stays importable."""
    if "tvm" in sys.modules:
        return
    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        import tvm  # noqa: F401

        import genomes.tvm_decoder  # noqa: F401
    finally:
        if blocked and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _child(request: BuildRequest, library: Path, error_file: Path, done_fd: int) -> None:
    code = 0
    try:
        os.setpgid(0, 0)
        _limit_child(request.timeout_s)
        if request.fault == "crash":  # without TVM's backtrace-printing handler
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGSEGV)
        if request.fault == "kill":  # what the kernel's out-of-memory killer sends
            os.kill(os.getpid(), signal.SIGKILL)
        if request.fault == "hang":
            time.sleep(1e6)
        error = compile_to_library(request, library)
        if error is not None:
            error_file.write_text(error)
    except BaseException:  # noqa: BLE001 - the child must exit, whatever happened
        error_file.write_text("build raised: " + traceback.format_exc().strip().splitlines()[-1])
        code = 1
    finally:
        os.write(done_fd, b"x")
        os._exit(code)


def _limit_child(timeout_s: float) -> None:
    """Die with the worker (PR_SET_PDEATHSIG) and after the CPU budget (RLIMIT_CPU),
    so a hung build can never outlive its run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    seconds = int(timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))


def compile_to_library(request: BuildRequest, library: Path) -> str | None:
    """Decode, compile and export one program to `library`; returns an error or None."""
    from evo.target import make_target
    from evo.tvm_runtime import CompileError, compile_plan
    from genomes.genome import LayerGenome, decode_layer
    from genomes.spec import LayerSpec

    spec = LayerSpec.from_json(request.spec)
    decoded = decode_layer(spec, LayerGenome.from_json(request.genome))
    if not decoded.ok:
        return f"decode: {decoded.error}"
    try:
        executable = compile_plan(decoded.plan, make_target(request.target))
    except CompileError as exc:
        return f"tvm: {exc}"
    executable.export_library(str(library))
    return None


def _wait_for_child(pid: int, done_fd: int, timeout_s: float) -> str | None:
    """Wait for the child to finish; kill it after `timeout_s`. None means it exited 0."""
    ready, _, _ = select.select([done_fd], [], [], timeout_s)
    if not ready:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished == 0:  # still running: kill it and anything it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return f"build timed out after {timeout_s:g} s"
    else:
        _, status = os.waitpid(pid, 0)
    return describe_exit(status, "build")


def describe_exit(status: int, what: str) -> str | None:
    """None for a clean exit, else a sentence naming the signal or exit code."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        hint = " (out of memory or CPU limit?)" if sig in (signal.SIGKILL, signal.SIGXCPU) else ""
        return f"{what} crashed: killed by {name}{hint}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return None if code == 0 else f"{what} process exited with code {code}"


def build_all(requests: list[BuildRequest], jobs: int, backend: str = "loky"
              ) -> Iterator[tuple[int, BuildResult]]:
    """Build every request; yields (index, result) as builds finish.

    `backend` is "loky" (`jobs` local worker processes, which ignore a terminal's Ctrl-C:
    `evo.measure.shield`) or "dask" (through joblib; needs an active
    `distributed.Client`). If the worker pool itself breaks, the requests it did not
    finish come back as errors.
    """
    if not requests:
        return
    done: set[int] = set()
    try:
        builds = _build_local(requests, jobs) if backend == "loky" else _build_joblib(
            requests, backend)
        for index, result in builds:
            done.add(index)
            yield index, result
    except Exception as exc:  # noqa: BLE001 - a broken pool must not end the run
        message = f"build worker pool failed: {type(exc).__name__}: {str(exc)[:200]}"
        for index in range(len(requests)):
            if index not in done:
                yield index, BuildResult(None, message, 0.0)


def _build_local(requests: list[BuildRequest], jobs: int
                 ) -> Iterator[tuple[int, BuildResult]]:
    from joblib.externals.loky import as_completed, get_reusable_executor

    threads = str(max(1, (os.cpu_count() or 1) // jobs))  # as joblib limits its workers
    executor = get_reusable_executor(
        max_workers=jobs, timeout=WORKER_IDLE_S, initializer=ignore_ctrl_c,
        env={var: threads for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS")})
    with children_ignore_ctrl_c():  # submitting starts any worker that is missing
        futures = {executor.submit(build_task, r): i for i, r in enumerate(requests)}
    for future in as_completed(futures):
        yield futures[future], future.result()


def _build_joblib(requests: list[BuildRequest], backend: str
                  ) -> Iterator[tuple[int, BuildResult]]:
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend=backend, n_jobs=-1):
        parallel = Parallel(return_as="generator_unordered", batch_size=1)
        yield from parallel(delayed(_indexed)(i, r) for i, r in enumerate(requests))


def _indexed(index: int, request: BuildRequest) -> tuple[int, BuildResult]:
    return index, build_task(request)
