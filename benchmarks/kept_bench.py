"""The accuracy-checked benchmark of one zoo network, resumable across sessions.

    .venv/bin/python -m benchmarks.kept_bench MODEL [--budget 2h] [--archive-every 20]
        [--threshold T] [--name NAME]
    .venv/bin/python -m benchmarks.kept_bench MODEL --status [--threshold T] [--name NAME]

In `runs/NAME/` (NAME is kept-MODEL-BUDGET unless `--name` says otherwise; restored
first from `benchmarks/checkpoints/NAME.tar.xz` when the folder is missing), with
the default capacity check (`flops`; `--threshold T` sets its floor, 0.6 unless given:
that floor was calibrated on resnet20, and `evo confirm` below, not the floor, decides
what keeps accuracy), one step after the other, each resuming or reusing what an
earlier session left:

1. `evo bench --model MODEL --time-budget BUDGET`: the full search, its program-only
   twin and MetaSchedule at the same wall clock, then the rows (`result.json`);
2. `evo confirm SEARCH` on the CIFAR-10 archive (5 epochs; the calibration study's
   trainings of resnet20 reused): the fastest network of the search's front that keeps
   the original's validation accuracy within a point;
3. that network's own rows, `bench-K.json` (`evo bench --run SEARCH --id K`, reusing the
   MetaSchedule tuning of step 1), unless step 1 benched it already.

While a step runs the folder (and its log, `runs/kept-MODEL-BUDGET.log`) is archived
every `--archive-every` minutes, and after each step, less the trainings' weights (a
training in progress restarts after a restore); the step's JSON is copied to
benchmarks/results/. Then `benchmarks.kept_accuracy train runs/kept-MODEL-BUDGET`
trains the original and the confirmed network with the full recipe. Run it on an
otherwise idle machine: the searches and MetaSchedule time programs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks.checkpoint import checkpoint
from benchmarks.kept_accuracy import confirmed
from benchmarks.training_queue import REPO, SHARED_DATA

EVO = [sys.executable, "-m", "evo"]
REUSE = REPO / "benchmarks" / "results" / "calibration-resnet20.jsonl"
# `evo confirm`'s trainings keep their weights (checkpoint.pt, weights.pt; 45-90 MB each
# for resnet18) in the run folder; the archive leaves them out, as nothing downstream reads
# them (a finished training counts by its line in results.jsonl). So after a restore on
# another machine, a training that was in progress starts again from its first epoch.
TRAINING_WEIGHTS = (".pt", ".pt.partial")
SUMMARY = Path("confirm-e5", "confirm.json")  # evo confirm's summary, in the search folder


def paths(model: str, budget: str, name: str | None = None,
          threshold: float | None = None) -> dict[str, Path]:
    """The run's folder, log, archive and results folder: named NAME, else
    kept-MODEL-BUDGET, with -floorT when the protocol runs with its own threshold."""
    floor = f"-floor{threshold:g}" if threshold is not None else ""
    name = name or f"kept-{model}-{budget}{floor}"
    return {"folder": REPO / "runs" / name, "log": REPO / "runs" / f"{name}.log",
            "archive": REPO / "benchmarks" / "checkpoints" / f"{name}.tar.xz",
            "results": REPO / "benchmarks" / "results" / name}


def archive(where: dict[str, Path]) -> None:
    """Snapshot the folder and its log into the archive (consistent SQLite copies),
    without the trainings' weights (`TRAINING_WEIGHTS`)."""
    present = [p for p in (where["folder"], where["log"]) if p.exists()]
    if present:
        checkpoint(present, where["archive"], leave_out=TRAINING_WEIGHTS)


def restore(where: dict[str, Path]) -> None:
    """Unpack the archive into runs/ when the folder is missing."""
    if where["folder"].exists() or not where["archive"].exists():
        return
    with tarfile.open(where["archive"]) as tar:
        tar.extractall(where["folder"].parent, filter="data")
    print(f"kept_bench: restored {where['folder']} from {where['archive']}", flush=True)


def step(command: list[str], where: dict[str, Path], every_s: float,
         stdout: Path | None = None) -> int:
    """Run `command` (stderr to the log, stdout to `stdout` or the log), archiving every
    `every_s` seconds while it runs and once after; its exit code."""
    print(f"kept_bench: {' '.join(command[2:])}", flush=True)
    with open(where["log"], "a") as log:
        out = open(stdout, "w") if stdout else log  # noqa: SIM115 - closed below
        child = subprocess.Popen(command, stdout=out, stderr=log, cwd=REPO)
        try:
            last = time.monotonic()
            while child.poll() is None:
                time.sleep(5)
                if time.monotonic() - last >= every_s:
                    archive(where)
                    last = time.monotonic()
        except KeyboardInterrupt:  # Ctrl-C reached the child too: let it stop, keep its state
            child.wait()
            archive(where)
            raise
        finally:
            if stdout:
                out.close()
    archive(where)
    return child.returncode


def status(where: dict[str, Path]) -> str:
    folder = where["folder"]
    search = folder / "search"
    lines = [f"{folder}:"]
    result = folder / "result.json"
    lines.append(f"  bench: {'done' if result.is_file() else 'not done'}")
    kept = confirmed(search)
    done = (search / SUMMARY).is_file()
    lines.append(f"  confirm: {'done' if done else 'not done'}"
                 + (f", fastest kept #{kept}" if done else ""))
    if kept is not None and result.is_file() \
            and json.loads(result.read_text())["individual"] == kept:
        lines.append(f"  rows of #{kept}: in result.json (the bench's own network)")
    elif kept is not None:
        rows = folder / f"bench-{kept}.json"
        lines.append(f"  rows of #{kept}: {'done' if rows.is_file() else 'not done'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--budget", default="2h", help="each search's time (default 2h)")
    parser.add_argument("--archive-every", type=float, default=20.0, metavar="MINUTES")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--status", action="store_true", help="say which steps are done")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="the searches' FLOPs floor (default: evo's, 0.6)")
    parser.add_argument("--name", help="the folder, log and archive name (default "
                                       "kept-MODEL-BUDGET, -floorT added with "
                                       "--threshold), to run the protocol again")
    args = parser.parse_args(argv)
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", args.name):
        print(f"kept_bench: --name {args.name!r}: use letters, digits, '_', '-' and '.' "
              f"(a name, not a path)", file=sys.stderr)
        return 2
    if args.threshold is not None and not 0 < args.threshold <= 1:
        print(f"kept_bench: --threshold {args.threshold}: a FLOPs floor is in (0, 1]",
              file=sys.stderr)
        return 2
    where = paths(args.model, args.budget, args.name, args.threshold)
    restore(where)
    if args.status:
        print(status(where))
        return 0
    if not args.data.is_file():
        print(f"kept_bench: {args.data}: no such archive", file=sys.stderr)
        return 2
    folder, every = where["folder"], args.archive_every * 60
    search, results = folder / "search", where["results"]
    results.mkdir(parents=True, exist_ok=True)
    if not (folder / "result.json").is_file():
        floor = [] if args.threshold is None else ["--threshold", f"{args.threshold:g}"]
        code = step([*EVO, "bench", "--model", args.model, "--time-budget", args.budget,
                     *floor, "--out", str(folder), "--quiet"], where, every)
        if not (folder / "result.json").is_file():
            print(f"kept_bench: evo bench stopped (exit {code}); see {where['log']}")
            return 1
    shutil.copy(folder / "result.json", results / "bench.json")
    data = f"imagefolder:{args.data.resolve()}"
    if not (search / SUMMARY).is_file():
        code = step([*EVO, "confirm", str(search), "--data", data, "--reuse", str(REUSE)],
                    where, every)
        if code != 0:
            print(f"kept_bench: evo confirm stopped (exit {code}); see {where['log']}")
            return 1
    if (search / SUMMARY).is_file():
        shutil.copy(search / SUMMARY, results / "confirm.json")
    kept = confirmed(search)
    benched = json.loads((folder / "result.json").read_text())["individual"]
    rows = folder / f"bench-{kept}.json"
    if kept is not None and kept != benched and not rows.is_file():
        partial = rows.with_suffix(".partial")
        code = step([*EVO, "bench", "--run", str(search), "--id", str(kept), "--program-run",
                     str(folder / "program-only"), "--out", str(folder), "--json"],
                    where, every, stdout=partial)
        if code not in (0, 1) or not partial.stat().st_size:  # 1: a row has an error
            print(f"kept_bench: evo bench --id {kept} stopped (exit {code})")
            return 1
        partial.replace(rows)
        archive(where)
    if rows.is_file():
        shutil.copy(rows, results / rows.name)
    print(status(where))
    print(f"next: .venv/bin/python -m benchmarks.kept_accuracy train {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
