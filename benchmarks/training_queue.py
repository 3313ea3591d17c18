"""The benchmarks' training queues: `evo.training.queue` plus the repository's paths
and an archive of unfinished trainings, so a queue continues on another machine
(`tar -C RUNS -xJf ARCHIVE`, then the same command)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.checkpoint import checkpoint
from evo.training.queue import Job, claim, finished, mean_and_spread, release, run_queue

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "cifar10-train-jpeg.zip"

__all__ = ["REPO", "SHARED_DATA", "Job", "archive_unfinished", "claim", "finished",
           "mean_and_spread", "release", "run_queue"]


def archive_unfinished(jobs: list[Job], results: Path, runs: Path, archive: Path) -> int:
    """Pack the folders of started, unfinished jobs into `archive` (.tar.xz) so a new
    machine continues them (`tar -C RUNS -xJf ARCHIVE`); returns how many."""
    done = finished(results)
    started = [runs / j.name for j in jobs if j.name not in done
               and (runs / j.name / "checkpoint.pt").exists()]
    if not started:
        archive.unlink(missing_ok=True)
        return 0
    checkpoint(started, archive)
    return len(started)
