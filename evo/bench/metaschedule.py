"""The MetaSchedule baseline: the original network tuned end to end by TVM MetaSchedule.

Tuning runs in a child process (`python -m evo.bench.metaschedule`), which loads
the network by its model name (as `evo.networks.load_network` does), imports it
to Relax with TVM's own conv2d, legalizes and fuses it, tunes every fused
operator with `tvm.s_tir.meta_schedule.relax_integration.tune_relax` (JSON
database in the work folder, XGBoost cost model when `xgboost` is installed,
else a random one), compiles with the database (operators without a record get
`ParallelVectorize`), and exports the library to `WORK/network.so`. The parent
loads that library, checks it against PyTorch and times it like every other row.

A finished tuning is recorded in `WORK/tuning.json`; a later call with the same
network, target, trial count and TVM version reuses the database and only
recompiles. The child isolates the parent from MetaSchedule's worker pools and
crashes, and from its one-minute import of TVM's tensor intrinsics.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tvm

from evo.bench.end_to_end import EndToEnd, measured
from evo.networks import load_network

LIBRARY = "network.so"
RECORD = "tuning.json"


@dataclass(frozen=True)
class Tuning:
    """What the child did: tasks, trials asked for and measured, time, reuse."""

    tasks: int
    trials: int
    measured: int
    seconds: float
    reused: bool
    cost_model: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def metaschedule_end_to_end(model: str, input_shape: tuple[int, ...], work_dir: str | Path,
                            trials: int, target: dict | None = None, threads: int = 2,
                            seed: int = 0, timeout: float = 7200.0,
                            check: bool = True) -> tuple[EndToEnd, Tuning | None]:
    """Tune (or reuse) `model` with `trials` MetaSchedule trials in all, then check and
    time it. Failures (the child crashing, timing out, or TVM errors) are the row's
    error value."""
    from evo.target import host_target_config

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    config = dict(target or host_target_config())
    config.setdefault("num-cores", threads)
    request = {"model": model, "input_shape": list(input_shape), "seed": seed,
               "target": config, "trials": trials, "threads": threads}
    start = time.perf_counter()
    env = dict(os.environ, TVM_NUM_THREADS=str(threads))
    child = subprocess.Popen([sys.executable, "-m", "evo.bench.metaschedule", str(work),
                              json.dumps(request)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env,
                             start_new_session=True)
    try:
        _, stderr = child.communicate(timeout=timeout)
    except BaseException as exc:  # timeout or Ctrl-C: stop the child and its worker pools
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        return EndToEnd(None, error=f"MetaSchedule: no result within {timeout:.0f} s"), None
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {child.returncode}"
        if child.returncode < 0:
            detail = f"the tuning process died of signal {-child.returncode}{_ffi_hint()}"
        return EndToEnd(None, error=f"MetaSchedule: {detail}"[:500],
                        compile_seconds=seconds), None
    tuning = Tuning(**json.loads((work / RECORD).read_text())["tuning"])
    network = load_network(model, input_shape, seed=seed)
    library = tvm.runtime.load_module(str(work / LIBRARY))
    return measured(network.module, library, input_shape, threads, check, seconds), tuning


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


def _tuning_key(request: dict) -> dict:
    from evo.bench.relax_import import IMPORT_VERSION

    return {**request, "tvm": tvm.__version__, "import": IMPORT_VERSION}


def _tune_and_export(work: Path, request: dict) -> None:
    """The child: tune (unless already done), compile with the database, export."""
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvm.s_tir import dlight
    from tvm.s_tir import meta_schedule as ms

    from evo.bench.cpu_schedule import ParallelVectorize
    from evo.bench.relax_import import to_relax

    shape = tuple(request["input_shape"])
    network = load_network(request["model"], shape, seed=request["seed"])
    target = tvm.target.Target(request["target"])
    mod = to_relax(network.module, shape, own_convs=False).mod
    with target:
        mod = tvm.transform.Sequential([relax.transform.DecomposeOpsForInference(),
                                        *cpu.library_dispatch_passes(target),
                                        *cpu.legalize_passes(target)])(mod)
    record_path = work / RECORD
    key = _tuning_key(request)
    previous = json.loads(record_path.read_text()) if record_path.exists() else {}
    reused = previous.get("key") == key
    tasks = ms.relax_integration.extract_tasks(mod, target)
    start = time.perf_counter()
    cost_model = _cost_model()
    if not reused:
        _import_tensor_intrinsics_quickly()
        record_path.unlink(missing_ok=True)
        per_task = max(1, math.ceil(request["trials"] / max(len(tasks), 1)))
        ms.relax_integration.tune_relax(
            mod, {}, target, str(work), max_trials_global=request["trials"],
            max_trials_per_task=per_task, num_trials_per_iter=min(64, per_task),
            builder=ms.builder.LocalBuilder(timeout_sec=600.0,
                                            initializer=_import_tensor_intrinsics_quickly),
            runner=ms.runner.LocalRunner(timeout_sec=120.0,
                                         initializer=_import_tensor_intrinsics_quickly),
            cost_model=cost_model, seed=request["seed"])
    database = ms.database.JSONDatabase(work_dir=str(work))
    with target, database, tvm.transform.PassContext(opt_level=3):
        mod = relax.transform.MetaScheduleApplyDatabase()(mod)
        mod = dlight.ApplyDefaultSchedule(ParallelVectorize())(mod)
        lower = tvm.transform.Sequential([*cpu.dataflow_lower_passes(target),
                                          *cpu.finalize_passes(target)])
        executable = tvm.compile(mod, target, relax_pipeline=lower)
    executable.export_library(str(work / LIBRARY))
    tuning = Tuning(len(tasks), request["trials"], len(database.get_all_tuning_records()),
                    round(time.perf_counter() - start, 1), reused, cost_model)
    record_path.write_text(json.dumps({"key": key, "tuning": tuning.to_json()}, indent=1))


def _cost_model() -> str:
    try:
        import xgboost  # noqa: F401
    except ImportError:
        return "random"
    return "xgb"


def _import_tensor_intrinsics_quickly() -> None:
    """Import `tvm.s_tir.tensor_intrin` (MetaSchedule needs it) with a cheap
    `inspect.stack`: TVMScript calls it for each of ~500 functions defined at import,
    and the full version looks up every frame's module and source (minutes here)."""
    import inspect

    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return

    def frames_only(context: int = 1) -> list[inspect.FrameInfo]:
        frame, stack = sys._getframe(1), []
        while frame is not None:
            stack.append(inspect.FrameInfo(frame, frame.f_code.co_filename, frame.f_lineno,
                                           frame.f_code.co_name, None, None))
            frame = frame.f_back
        return stack

    original = inspect.stack
    inspect.stack = frames_only
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="MetaSchedule tuning child of evo bench.")
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("request", help="JSON: model, input_shape, seed, target, trials")
    args = parser.parse_args(argv)
    from evo.errors import user_error_types

    try:
        _tune_and_export(args.work_dir, json.loads(args.request))
    except user_error_types() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
