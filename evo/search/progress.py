"""What a run shows while it searches, and the `progress.jsonl` it appends for dashboards.

Progress is counted in candidates: each generation still to run is worth
`population` of them. Within a generation it moves as candidates are evaluated (a
candidate refused by the capacity check at once, a legal one as its slots'
measurements come back); when a generation is committed it jumps to that
generation's end (a generation that reuses known genomes evaluates fewer).

The ETA is the smaller of the time left in the time budget (counted from this
session's start, as the budget is) and the time the remaining candidates take at
this session's rate so far; unknown before the first candidate when there is no
time budget, and without a generation limit it is the budget's alone.

On stderr: a tqdm bar when stderr is a terminal and `--quiet` is not given; else (a
pipe, a file, or `--quiet`) one plain line per generation and no redraw.

`progress.jsonl` in the run folder gets one JSON object per committed generation,
written just after the commit in one `os.write` on a descriptor opened with
`evo.outputs.open_appending` (no link followed, appended, so a resume continues
it; a kill between the commit and the write can miss that generation's line):
`time` (Unix time), `session` (the store's session id), `generation`,
`evaluations` (the store's count), `best_ms`, `speedup`, `speedup_vs_template`,
`legal_share` (of the generation's new individuals), `front_size`, `elapsed_s`
(search time over all sessions, as stored), `session_elapsed_s`,
`generations_left` (None without a generation limit), `budget_left_s` (None
without a time budget) and `eta_s` (None when unknown).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

PROGRESS_NAME = "progress.jsonl"
_BOUNDED = "{l_bar}{bar}| {n:.0f}/{total_fmt} candidates [{elapsed}{postfix}]"
_UNBOUNDED = "{desc}: {n:.0f} candidates [{elapsed}{postfix}]"


class RunProgress:
    """One session's progress display and progress log (see the module)."""

    def __init__(self, folder: Path, log_fd: int, session: int, population: int,
                 generations_left: int | None, budget_s: float | None, quiet: bool,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.log_fd = log_fd
        self.session = session
        self.population = max(1, population)
        self.generations_left = generations_left
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.done = 0  # generations committed in this session
        self.exact = 0  # candidates evaluated in the generation under way (whole chunks)
        self.current = 0.0  # the same, with the chunk under way's evaluated part
        self.bar: tqdm | None = None
        self._best = ""  # the bar's account of the last committed generation
        if not quiet and _is_terminal(self.stream):
            total = None if generations_left is None else generations_left * self.population
            self.bar = tqdm(total=total, desc=Path(folder).name, file=self.stream,
                            dynamic_ncols=True, bar_format=_UNBOUNDED if total is None
                            else _BOUNDED)
            self._show(force=True)

    # --------------------------------------------------------------- counting
    def partial(self, candidates: float) -> None:
        """Part of a chunk of candidates is evaluated (the evaluator's report)."""
        self.current = min(self.current + candidates, float(self.population))
        self._show()

    def evaluated(self, candidates: int) -> None:
        """A chunk of `candidates` is evaluated (the search's exact count)."""
        self.exact += candidates
        self.current = float(self.exact)
        self._show()

    def generation(self, log: dict) -> None:
        """A generation was committed with this logbook: log it and show it."""
        self.done += 1
        self.exact, self.current = 0, 0.0
        record = self.record(log)
        self._append(record)
        if self.bar is not None:
            self._best = _postfix(record)
            self._show(force=True)
        else:
            print(plain_line(record), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.log_fd >= 0:
            os.close(self.log_fd)
            self.log_fd = -1

    # ------------------------------------------------------------------ times
    @property
    def position(self) -> float:
        """Candidates of this session done: whole generations, then the one under way."""
        return self.done * self.population + self.current

    def eta_s(self, elapsed: float | None = None) -> float | None:
        """min(time left in the budget, the remaining candidates at this session's
        rate), `elapsed` seconds (default: now) into the session."""
        if elapsed is None:
            elapsed = time.monotonic() - self.started
        estimates = []
        if self.budget_s is not None:
            estimates.append(max(0.0, self.budget_s - elapsed))
        if self.generations_left is not None:
            remaining = self.generations_left * self.population - self.position
            if remaining <= 0:
                estimates.append(0.0)
            elif self.position > 0:
                estimates.append(remaining * elapsed / self.position)
        return min(estimates) if estimates else None

    def record(self, log: dict) -> dict:
        """The progress.jsonl object for a committed generation's logbook."""
        elapsed = time.monotonic() - self.started
        left = None if self.generations_left is None else self.generations_left - self.done
        return {"time": time.time(), "session": self.session,
                "generation": log["generation"], "evaluations": log["evaluations"],
                "best_ms": log["best_ms"], "speedup": log["speedup"],
                "speedup_vs_template": log.get("speedup_vs_template"),
                "legal_share": log["legal_share"], "front_size": log["front_size"],
                "elapsed_s": log["elapsed_s"], "session_elapsed_s": elapsed,
                "generations_left": left,
                "budget_left_s": None if self.budget_s is None
                else max(0.0, self.budget_s - elapsed),
                "eta_s": self.eta_s(elapsed)}

    # ---------------------------------------------------------------- output
    def _show(self, force: bool = False) -> None:
        if self.bar is None:
            return
        eta = self.eta_s()
        head = f"eta {clock(eta)}" if eta is not None else "eta ?"
        self.bar.set_postfix_str(f"{head}, {self._best}" if self._best else head,
                                 refresh=False)
        self.bar.update(self.position - self.bar.n)
        if force:
            self.bar.refresh()

    def _append(self, record: dict) -> None:
        if self.log_fd < 0:
            return
        try:
            os.write(self.log_fd, (json.dumps(record) + "\n").encode())
        except OSError as exc:  # a full disk must not stop a search: say so, stop logging
            print(f"warning: cannot write {PROGRESS_NAME} ({exc.strerror}); the search "
                  "goes on without it", file=self.stream, flush=True)
            os.close(self.log_fd)
            self.log_fd = -1


def plain_line(record: dict) -> str:
    """A generation's one line: best, speedups, legal share, evaluations, front, ETA."""
    r = record
    best = f"{r['best_ms']:.3f}ms" if r["best_ms"] is not None else "none"
    speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
    if r.get("speedup_vs_template"):
        speedup += f" ({r['speedup_vs_template']:.2f}x vs template)"
    eta = f" eta {clock(r['eta_s'])}" if r["eta_s"] is not None else ""
    return (f"generation {r['generation']}: best {best} speedup {speedup} "
            f"legal {r['legal_share']:.0%} evaluations {r['evaluations']} "
            f"front {r['front_size']}{eta}")


def _postfix(record: dict) -> str:
    best = f"{record['best_ms']:.3f}ms" if record["best_ms"] is not None else "none"
    speedup = f" {record['speedup']:.2f}x" if record["speedup"] else ""
    return (f"gen {record['generation']} best {best}{speedup} "
            f"legal {record['legal_share']:.0%}")


def clock(seconds: float) -> str:
    """A duration as 45s, 3m05s, 2h03m or 1d04h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
