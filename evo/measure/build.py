"""Build layer programs in parallel, each in a sandbox process with a timeout.

`evo.measure.pool.build_all` hands one `BuildRequest` per program to a pool of
worker processes (loky, on this machine) or to Dask workers elsewhere. The task,
`build_task`, forks a child that decodes the genome, compiles it with TVM and
exports a shared library (linked by the C++ compiler TVM uses: `CXX`, else the
first of g++, gcc, clang++, ... on PATH); the parent waits at most `timeout_s`,
kills a child that hangs, and turns a child that dies (segfault, out-of-memory
kill) into an error string. So one bad candidate costs one result, never the run.
The child's stderr goes to a file; an error other than a decode or TVM error ends
with its last `STDERR_TAIL` lines. The library comes back as bytes, so builds may
happen on another machine.

`blame_unclear(error)` says whether an error may be the machinery's rather than
the candidate's (an export or link failure, a build child that raised or exited
non-zero): the evaluator then checks the machinery with a known-good build.

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
from dataclasses import dataclass
from pathlib import Path

FAULT_ENV = "EVO_MEASURE_FAULT"
STDERR_TAIL = 20  # lines of a failed build's stderr kept in its error
# Errors that are the candidate's whatever the machinery does (cf. `blame_unclear`).
CANDIDATE_ERRORS = ("decode:", "tvm:", "build timed out", "build crashed:")
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


def blame_unclear(error: str | None) -> bool:
    """True for a build error that may come from the machinery (compiler, disk, worker)
    rather than the candidate: anything but a decode, TVM, timeout or crash error."""
    return error is not None and not error.startswith(CANDIDATE_ERRORS)


_FORK_LOCK = threading.Lock()


def build_task(request: BuildRequest) -> BuildResult:
    """Build one program in a forked child; never raises."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="evo-build-") as folder:
        library = Path(folder, "program.so")
        error_file, stderr_file = Path(folder, "error.txt"), Path(folder, "stderr.txt")
        # A worker may run builds in several threads (Dask): a fork while another thread
        # holds the import lock (importing TVM) would leave the child deadlocked.
        with _FORK_LOCK:
            _import_tvm()  # once per worker; the forked children inherit it
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(read_end)
                _child(request, library, error_file, stderr_file, write_end)
        os.close(write_end)
        with contextlib.suppress(OSError):  # also done by the child: no race either way
            os.setpgid(pid, pid)
        error = _wait_for_child(pid, read_end, request.timeout_s)
        os.close(read_end)
        if error_file.exists():  # the child's own account comes first
            error = error_file.read_text(errors="replace")[:500] or error or "build failed"
        if error is None and not library.exists():
            error = "build produced no library"
        if error is not None and not error.startswith(("decode:", "tvm:")):
            error += _tail(stderr_file)
        data = library.read_bytes() if error is None else None
    return BuildResult(data, error, time.monotonic() - start)


def _tail(path: Path) -> str:
    """The last `STDERR_TAIL` non-empty lines of `path`, as lines after a heading."""
    try:
        text = path.read_bytes()[-20_000:].decode(errors="replace")
    except OSError:
        return ""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][-STDERR_TAIL:]
    if not lines:
        return ""
    return "\nstderr of the build (last lines):" + "".join(f"\n  | {line[:300]}"
                                                           for line in lines)


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


def _child(request: BuildRequest, library: Path, error_file: Path, stderr_file: Path,
           done_fd: int) -> None:
    code = 0
    try:
        os.setpgid(0, 0)
        sink = os.open(stderr_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(sink, 2)  # TVM's and the compiler's messages, for the error's tail
        os.close(sink)
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - for life
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
        traceback.print_exc()
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
    try:
        executable.export_library(str(library))
    except Exception as exc:  # noqa: BLE001 - linking: the compiler, the disk
        print(exc, file=sys.stderr, flush=True)  # the compiler's output, for the tail
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        head = " ".join(lines[:2]) if lines and lines[0].endswith(":") else "".join(lines[:1])
        return f"export: {type(exc).__name__}: {head}"[:500]
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
