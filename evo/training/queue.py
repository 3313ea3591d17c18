"""Run a list of trainings one after another, resumably, appending each result.

A job is a name and `TrainSettings`. Each trains into `RUNS/<name>` with `evo train`'s
`train` (a checkpoint per epoch, so a stopped job continues from its last epoch),
and when it finishes one JSON line is appended to the results file: the job's name,
settings, accuracy and what it was measured on, the history, the machine and the
time it took. Jobs already in the results file are skipped, so the same command
continues a queue after a stop.

Several workers may share a queue (e.g. one per core with `--threads 1`): a worker
claims a job by creating `RUNS/<name>.claim` (O_EXCL) with its pid, skips jobs
claimed by a live process, takes over claims of dead ones, and appends its result
line with one `write` of an O_APPEND file (whole lines, never interleaved).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evo.host import _cpu_model
from evo.training import TrainSettings, train
from evo.training.data import TrainData, load_train_data
from evo.training.speed import StepOptions


@dataclass(frozen=True)
class Job:
    """One training of a queue."""

    name: str
    settings: TrainSettings
    tags: tuple[str, ...] = ()


def finished(results: Path) -> dict[str, dict[str, Any]]:
    """The results already appended, by job name (a torn last line is ignored)."""
    done: dict[str, dict[str, Any]] = {}
    if not results.exists():
        return done
    for line in results.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "name" in row:
            done[row["name"]] = row
    return done


def run_queue(jobs: list[Job], results: Path, runs: Path, threads: int,
              after_job: Callable[[Job, dict[str, Any]], None] | None = None,
              stop_after: float | None = None,
              loaded: dict[tuple[str, int, int], TrainData] | None = None) -> int:
    """Train every job not yet in `results`; returns how many were trained now.
    `stop_after` (seconds) starts no new job once that much time has passed; `loaded`
    keeps the data sets read, by (data, val_split, split_seed), across calls."""
    torch.set_num_threads(threads)
    started = time.monotonic()
    loaded = {} if loaded is None else loaded
    trained = 0
    for job in jobs:
        if job.name in finished(results):
            continue
        if stop_after is not None and time.monotonic() - started > stop_after:
            print(f"time is up: {job.name} and later jobs are left for the next run",
                  flush=True)
            break
        if not claim(runs, job.name):
            continue
        if job.name in finished(results):  # finished by another worker meanwhile
            release(runs, job.name)
            continue
        s = job.settings
        key = (s.data, s.val_split, s.split_seed)
        if key not in loaded:
            loaded[key] = load_train_data(s.data, s.val_split, s.split_seed)
        print(f"== {job.name}: {s.model}, {s.epochs} epochs, seed {s.seed}, {s.precision}",
              flush=True)
        began = time.monotonic()
        final = train(s, runs / job.name, quiet=True, data=loaded[key],
                      options=StepOptions(precision=s.precision))
        history = json.loads((runs / job.name / "history.json").read_text())
        row = {"name": job.name, "tags": list(job.tags), "settings": s.to_json(),
               "accuracy": final["accuracy"], "evaluated_on": final["evaluated_on"],
               "eval_images": final["eval_images"], "history": history,
               "train_seconds": sum(h["seconds"] for h in history),
               "seconds_this_run": time.monotonic() - began, "threads": threads,
               "cpu": _cpu_model(), "when": time.strftime("%Y-%m-%d %H:%M")}
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        release(runs, job.name)
        trained += 1
        print(f"== {job.name}: {final['eval_kind']} accuracy {final['accuracy']:.4f}",
              flush=True)
        if after_job is not None:
            after_job(job, row)
    return trained


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(runs: Path, name: str) -> bool:
    """Claim job `name` for this process; False when a live process holds it."""
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{name}.claim"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder == os.getpid():
                return True
            if holder and _alive(holder):
                return False
            path.unlink(missing_ok=True)  # a dead worker's claim: take it over
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return True
    return False


def release(runs: Path, name: str) -> None:
    (runs / f"{name}.claim").unlink(missing_ok=True)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
