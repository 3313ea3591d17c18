"""The MetaSchedule tuning child of `evo.bench.metaschedule` (`python -m` this module).

It loads the network by its model name (as `evo.networks.load_network` does), imports it
to Relax with TVM's own conv2d, legalizes and fuses it, and tunes every fused operator
with `tvm.s_tir.meta_schedule.relax_integration.tune_relax`: `trials_per_task` trials
for each task (`trials_per_task` x tasks in all), the XGBoost cost model when
`xgboost` and `psutil` import (else a random one), a JSON database in the work
folder. Then it compiles with the database (operators without a record get
`ParallelVectorize`), exports `WORK/network.so` and records what it did in
`WORK/tuning.json`.

Its stdout carries MetaSchedule's log and two marker lines for the parent,
`MARKER tuning` when tuning starts and `MARKER tuned` when it ends. A request with
`stopped` set (the parent stopped the tuning at its time budget) skips tuning and
compiles with the records measured so far; one with `resume` set (an interrupted
budgeted tuning) keeps the database and tunes on from it. A request whose key
(network, target, trials, budget, TVM version) matches `tuning.json` reuses its database
and only recompiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tvm

from evo.bench.metaschedule import LIBRARY, MARKER, RECORD
from evo.networks import load_network

DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")


def tuning_key(request: dict) -> dict:
    """What a reusable tuning must have been asked for (the request less `stopped` and
    `resume`)."""
    from evo.bench.relax_import import IMPORT_VERSION

    asked = {k: v for k, v in request.items() if k not in ("stopped", "resume")}
    return {**asked, "tvm": tvm.__version__, "import": IMPORT_VERSION}


def cost_model() -> str:
    """"xgb" when MetaSchedule's XGBoost model can run here (xgboost and psutil), else
    "random"."""
    try:
        import psutil  # noqa: F401
        import xgboost  # noqa: F401
    except ImportError:
        return "random"
    return "xgb"


def tune_and_export(work: Path, request: dict) -> None:
    """Tune (unless reused or stopped), compile with the database, export, record."""
    from tvm.s_tir import meta_schedule as ms

    from evo.bench.relax_import import to_relax

    shape = tuple(request["input_shape"])
    network = load_network(request["model"], shape, seed=request["seed"])
    target = tvm.target.Target(request["target"])
    mod = _legalized(to_relax(network.module, shape, own_convs=False).mod, target)
    record_path = work / RECORD
    key = tuning_key(request)
    previous = json.loads(record_path.read_text()) if record_path.exists() else {}
    tasks = ms.relax_integration.extract_tasks(mod, target)
    per_task = request["trials_per_task"]
    tuning = {"tasks": len(tasks), "trials_per_task": per_task,
              "trials": per_task * len(tasks), "budget_s": request.get("budget_s"),
              "cost_model": cost_model(), "reused": False}
    if request.get("stopped"):
        _drop_torn_lines(work)
        tuning.update(seconds=request["stopped"]["seconds"], stopped="time budget",
                      resumed_s=request["stopped"].get("resumed_s", 0.0))
    elif previous.get("key") == key:
        tuning.update({k: previous["tuning"][k] for k in ("seconds", "stopped", "cost_model")},
                      reused=True)
    else:
        import_tensor_intrinsics_quickly()
        record_path.unlink(missing_ok=True)
        if request.get("resume"):  # an interrupted budgeted tuning: go on from its records
            _drop_torn_lines(work)
        else:
            for name in DATABASE_FILES:
                (work / name).unlink(missing_ok=True)
        _say("tuning")
        start = time.perf_counter()
        ms.relax_integration.tune_relax(
            mod, {}, target, str(work), max_trials_global=per_task * len(tasks),
            max_trials_per_task=per_task, num_trials_per_iter=min(64, per_task),
            builder=ms.builder.LocalBuilder(timeout_sec=600.0,
                                            initializer=import_tensor_intrinsics_quickly),
            runner=ms.runner.LocalRunner(timeout_sec=120.0,
                                         initializer=import_tensor_intrinsics_quickly),
            cost_model=tuning["cost_model"], seed=request["seed"])
        tuning.update(seconds=round(time.perf_counter() - start, 1), stopped="trials")
        _say("tuned")
    database = ms.database.JSONDatabase(work_dir=str(work))
    _compile(mod, target, database).export_library(str(work / LIBRARY))
    tuning["measured"] = len(database.get_all_tuning_records())
    record_path.write_text(json.dumps({"key": key, "tuning": tuning}, indent=1))


def _legalized(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    with target:
        return tvm.transform.Sequential([relax.transform.DecomposeOpsForInference(),
                                         *cpu.library_dispatch_passes(target),
                                         *cpu.legalize_passes(target)])(mod)


def _compile(mod: tvm.IRModule, target: tvm.target.Target, database) -> tvm.runtime.Executable:
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvm.s_tir import dlight

    from evo.bench.cpu_schedule import ParallelVectorize

    with target, database, tvm.transform.PassContext(opt_level=3):
        mod = relax.transform.MetaScheduleApplyDatabase()(mod)
        mod = dlight.ApplyDefaultSchedule(ParallelVectorize())(mod)
        lower = tvm.transform.Sequential([*cpu.dataflow_lower_passes(target),
                                          *cpu.finalize_passes(target)])
        return tvm.compile(mod, target, relax_pipeline=lower)


def _drop_torn_lines(work: Path) -> None:
    """Drop database lines that are not whole JSON (the last one written when the tuning
    was killed may be cut short)."""
    for name in DATABASE_FILES:
        path = work / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text().splitlines():
            try:
                json.loads(line)
            except ValueError:
                continue
            kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))


def _say(what: str) -> None:
    print(f"{MARKER} {what}", flush=True)


def import_tensor_intrinsics_quickly() -> None:
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
    parser.add_argument("request", help="JSON: model, input_shape, seed, target, "
                                        "trials_per_task, budget_s, threads[, stopped]")
    args = parser.parse_args(argv)
    from evo.errors import user_error_types

    try:
        tune_and_export(args.work_dir, json.loads(args.request))
    except user_error_types() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
