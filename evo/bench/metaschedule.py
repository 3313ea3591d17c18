"""The MetaSchedule baseline: the original network tuned end to end by TVM MetaSchedule
as its users run it: trials per task, the XGBoost cost model, optionally a wall clock.

    row, tuning = metaschedule_end_to_end("resnet18", (1, 3, 32, 32), "out/ms",
                                          trials_per_task=64, budget_s=7200)

Tuning runs in a child process (`python -m evo.bench.metaschedule_child`, which says
what it tunes and how); it exports `WORK/network.so`, and the parent loads that, checks
it against PyTorch and times it like every other row. The child's stderr goes to
`WORK/child.log`; on stdout its marker lines tell the parent when tuning starts and
ends (the rest, MetaSchedule's cost-model log, is read and dropped).

With `budget_s`, the tuning is stopped (the child and its worker pools killed)
`budget_s` seconds after it started, and a second child compiles with the records
measured so far; without a `trials_per_task` the budget alone then limits the tuning
(UNBOUNDED_TRIALS per task). A budgeted tuning cut short from outside (Ctrl-C, a
reboot, the end of a session) resumes: while it tunes, the parent writes the seconds
tuned so far to `WORK/tuning-progress.json`, and a later call with the same request
keeps the database and tunes for the budget left (MetaSchedule's cost model starts
afresh, its search from the database's best programs). `timeout` limits everything
else (loading, compiling). The child isolates the parent from MetaSchedule's worker
pools and crashes, and from its one-minute import of TVM's tensor intrinsics.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import tvm

from evo.bench.end_to_end import EndToEnd, measured
from evo.networks import load_network

LIBRARY = "network.so"
RECORD = "tuning.json"
MARKER = "evo-metaschedule:"  # the child's marker lines start with it
TRIALS_PER_TASK = 64
UNBOUNDED_TRIALS = 10_000  # trials per task when a time budget is the limit
LOG = "child.log"
PROGRESS = "tuning-progress.json"
PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class Tuning:
    """What the tuning did: `trials_per_task` x `tasks` = `trials` asked for, `measured`
    tuning records in the database, `seconds` of tuning (of the tuning that made the
    database, when `reused`), `budget_s` its wall-clock budget, `stopped` why it ended
    ("trials": every task done or its search space exhausted; "time budget"), and the
    cost model ("xgb", or "random" when xgboost or psutil is missing). `resumed_s` is
    how much of `seconds` earlier, interrupted calls had tuned (0 when none)."""

    tasks: int
    trials_per_task: int
    trials: int
    measured: int
    seconds: float
    budget_s: float | None
    stopped: str
    reused: bool
    cost_model: str
    resumed_s: float = 0.0

    def to_json(self) -> dict:
        return dict(self.__dict__)


def metaschedule_end_to_end(model: str, input_shape: tuple[int, ...], work_dir: str | Path,
                            trials_per_task: int | None = None, budget_s: float | None = None,
                            target: dict | None = None, threads: int = 2, seed: int = 0,
                            timeout: float = 3600.0,
                            check: bool = True) -> tuple[EndToEnd, Tuning | None]:
    """Tune (or reuse) `model` with MetaSchedule, then check and time it. Failures (the
    child crashing or timing out, TVM errors) are the row's error value."""
    from evo.target import host_target_config

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    config = dict(target or host_target_config())
    config.setdefault("num-cores", threads)
    if trials_per_task is None:
        trials_per_task = UNBOUNDED_TRIALS if budget_s else TRIALS_PER_TASK
    request = {"model": model, "input_shape": list(input_shape), "seed": seed,
               "target": config, "trials_per_task": trials_per_task, "budget_s": budget_s,
               "threads": threads}
    start = time.perf_counter()
    env = dict(os.environ, TVM_NUM_THREADS=str(threads))
    done = _tuned_before(work, request) if budget_s else 0.0
    if done >= (budget_s or math.inf):
        outcome, detail = "budget", 0.0  # the budget was spent before an interruption
    else:
        if done:
            request["resume"] = {"seconds": round(done, 1)}
        outcome, detail = _child(work, request, env,
                                 None if budget_s is None else budget_s - done, timeout,
                                 progress=(done, request) if budget_s else None)
    if outcome == "budget":
        request.pop("resume", None)
        request["stopped"] = {"seconds": round(done + detail, 1),
                              "resumed_s": round(done, 1)}
        outcome, detail = _child(work, request, env, None, timeout)
    seconds = time.perf_counter() - start
    if outcome != "done":
        return EndToEnd(None, error=f"MetaSchedule: {detail}"[:500],
                        compile_seconds=seconds), None
    (work / PROGRESS).unlink(missing_ok=True)
    tuning = Tuning(**json.loads((work / RECORD).read_text())["tuning"])
    network = load_network(model, input_shape, seed=seed)
    library = tvm.runtime.load_module(str(work / LIBRARY))
    return measured(network.module, library, input_shape, threads, check, seconds,
                    library=work / LIBRARY), tuning


def _tuned_before(work: Path, request: dict) -> float:
    """Seconds an interrupted tuning of this request tuned (`PROGRESS`), 0.0 if none or
    if its tuning record is written (then the child reuses or redoes it)."""
    from evo.bench.metaschedule_child import tuning_key

    path = work / PROGRESS
    if not path.is_file() or (work / RECORD).is_file():
        return 0.0
    try:
        progress = json.loads(path.read_text())
        seconds = float(progress["seconds"])
    except (ValueError, KeyError, TypeError):
        return 0.0
    if progress.get("key") != json.loads(json.dumps(tuning_key(request))) \
            or not math.isfinite(seconds) or seconds < 0:
        return 0.0
    return seconds


def _write_progress(work: Path, request: dict, seconds: float) -> None:
    from evo.bench.metaschedule_child import tuning_key

    temporary = work / f"{PROGRESS}.partial"
    temporary.write_text(json.dumps({"key": tuning_key(request), "seconds": round(seconds, 1)}))
    temporary.replace(work / PROGRESS)


def _child(work: Path, request: dict, env: dict, budget_s: float | None,
           timeout: float, progress: tuple[float, dict] | None = None) -> tuple[str, object]:
    """Run one child to its end. ("done", None); ("budget", seconds tuned) when its
    tuning ran out of `budget_s` and was killed; ("error", one line) otherwise. With
    `progress` (seconds tuned before, the request), the seconds tuned in all are written
    to `PROGRESS` every `PROGRESS_EVERY_S` while the child tunes."""
    with open(work / LOG, "w") as log:
        child = subprocess.Popen([sys.executable, "-m", "evo.bench.metaschedule_child",
                                  str(work), json.dumps(request)], stdout=subprocess.PIPE,
                                 stderr=log, text=True, env=env, start_new_session=True)
    report = None
    if progress is not None:
        before, asked = progress

        def report(seconds: float) -> None:
            _write_progress(work, asked, before + seconds)

    with _stopped_by_signals():
        outcome = supervise(child, budget_s, timeout, report)
    if outcome[0] != "exited":
        return outcome
    if child.returncode == 0:
        return "done", None
    if child.returncode < 0:
        return "error", f"the tuning process died of signal {-child.returncode}{_ffi_hint()}"
    text = (work / LOG).read_text(errors="replace")
    last = [line for line in text.strip().splitlines() if line.strip()]
    return "error", last[-1] if last else f"exit code {child.returncode}"


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While the child runs, SIGINT and SIGTERM raise KeyboardInterrupt here, so
    `supervise` kills the child's process group and records the seconds tuned: also when
    this process was started in the background (where the shell makes it ignore SIGINT)
    and when it is stopped with SIGTERM (whose default would leave the child tuning)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, stop)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():  # None: a handler not set from Python
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def supervise(child: subprocess.Popen, budget_s: float | None, timeout: float,
              report: Callable[[float], None] | None = None) -> tuple[str, object]:
    """Follow a child through its marker lines on stdout (other lines, such as
    MetaSchedule's cost-model log, are read and dropped) until it exits: ("exited",
    None), its worker pools killed; ("budget", seconds tuned) when its tuning ran
    `budget_s` and it was killed; ("error", one line) when a phase outlived `timeout`.
    While it tunes, `report(seconds tuned)` is called every `PROGRESS_EVERY_S`, however
    much the child writes, and once more when the parent is interrupted (Ctrl-C), which
    kills the child and re-raises."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read, args=(child.stdout, lines), daemon=True).start()
    phase, deadline, tuning_start = "setup", time.monotonic() + timeout, 0.0
    next_report = math.inf
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                _kill(child)
                if phase == "tuning":
                    return "budget", now - tuning_start
                return "error", f"no result within {timeout:.0f} s ({phase})"
            if report is not None and phase == "tuning" and now >= next_report:
                report(now - tuning_start)
                next_report = now + PROGRESS_EVERY_S
            wake = min(deadline, next_report if phase == "tuning" else math.inf)
            try:
                line = lines.get(timeout=None if math.isinf(wake) else max(0.0, wake - now))
            except queue.Empty:
                continue
            if line is None:
                break
            if line == f"{MARKER} tuning":
                phase, tuning_start = "tuning", time.monotonic()
                deadline = tuning_start + budget_s if budget_s else math.inf
                next_report = tuning_start + PROGRESS_EVERY_S
            elif line == f"{MARKER} tuned":
                phase, deadline = "compiling", time.monotonic() + timeout
        child.wait()
    except BaseException:  # Ctrl-C: stop the child and its worker pools
        _kill(child)
        if report is not None and phase == "tuning":  # what the resumed tuning goes on from
            report(time.monotonic() - tuning_start)
        raise
    _kill(child)  # worker pools it left behind
    return "exited", None


def _read(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _kill(child: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _ffi_hint() -> str:
    """apache-tvm-ffi 0.1.15 crashes TVM 0.27's `save_json`, which MetaSchedule calls."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = tuple(int(p) for p in version("apache-tvm-ffi").split(".")[:3])
    except (PackageNotFoundError, ValueError):
        return ""
    if release >= (0, 1, 15):
        return " (apache-tvm-ffi >= 0.1.15 crashes TVM 0.27's save_json; install 0.1.14.post0)"
    return ""
