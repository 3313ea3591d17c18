"""Head to head: `evo bench`'s rows raced against each other in interleaved rounds.

Timed one after another, rows are not comparable on a shared VM: over a run of tens of
seconds the host slows this machine down for windows of seconds at a time (resnet20 in
TVM, 2 threads, one process timed for 25 s: 0.6 ms in some windows, 1.2 ms in others;
ONNX Runtime in the same windows 0.5-0.6 and 0.9-1.4 ms; benchmarks/RESULTS.md). So
the headline figures come from a race: each contender (a TVM row's exported .so, an
ONNX-based peer's model) is loaded once in a process of its own
(`python -m evo.bench.race_worker`), and in each of `rounds` rounds every contender in
turn runs for one window (`WINDOW_S`, after a warm-up inference) while the others wait
on their pipes; a worker answers only once its threads have stopped spinning, so the
next one starts on a quiet machine. Contenders of one round run within a few seconds
of each other, so they share the machine's state; a speedup is the median over rounds
of the ratio of two contenders' times in the same round, with the quartiles as its spread. The order
rotates from round to round. PyTorch eager and `torch.compile` rows are not raced
(they have no file to load in another process).
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from evo.bench.peers import ONNX_PEERS
from evo.bench.race_worker import WINDOW_S, WINDOW_VARIABLE

ROUNDS = 20
READY_TIMEOUT_S = 600.0
TURN_TIMEOUT_S = 120.0
DISCOVERED = "tvm_discovered"


@dataclass(frozen=True)
class Contender:
    """A row that can be raced: its name, its network (`original`, `discovered`,
    `blockswap`), the worker kind (`tvm`, `onnxruntime`, `openvino`) and its file."""

    name: str
    network: str
    kind: str
    path: Path


@dataclass
class Race:
    """Per contender, its milliseconds per inference in each round (None where it had
    failed by then), and the one-line error of each contender that failed."""

    rounds: int
    window_s: float
    contenders: list[Contender]
    ms: dict[str, list[float | None]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def times(self, name: str) -> list[float]:
        return [ms for ms in self.ms.get(name, []) if ms is not None]

    def median_ms(self, name: str) -> float | None:
        times = self.times(name)
        return statistics.median(times) if times else None

    def ratios(self, theirs: str, mine: str) -> list[float]:
        """`theirs`' time over `mine`'s, round by round (rounds where both ran)."""
        return [t / m for t, m in zip(self.ms.get(theirs, []), self.ms.get(mine, []),
                                      strict=False) if t is not None and m]

    def best_peer(self) -> str | None:
        """The contender on the original network with the lowest median."""
        original = [c.name for c in self.contenders
                    if c.network == "original" and self.median_ms(c.name) is not None]
        return min(original, key=lambda name: self.median_ms(name), default=None)

    def to_json(self) -> dict:
        best = self.best_peer()
        against = {"vs_program_only": "tvm_program_only",
                   "vs_metaschedule": "tvm_metaschedule", "vs_best_peer": best}
        speedup, quartiles = {}, {}
        for key, theirs in against.items():
            ratios = self.ratios(theirs, DISCOVERED) if theirs else []
            speedup[key] = statistics.median(ratios) if ratios else None
            quartiles[key] = _quartiles(ratios)
        return {"rounds": self.rounds, "window_s": self.window_s,
                "contenders": [{"name": c.name, "network": c.network, "kind": c.kind,
                                "ms": self.ms.get(c.name, []),
                                "median_ms": self.median_ms(c.name),
                                "min_ms": min(self.times(c.name), default=None)}
                               for c in self.contenders],
                "errors": self.errors, "best_peer": best, "speedup": speedup,
                "speedup_quartiles": quartiles}


def contenders(rows: Sequence[dict]) -> list[Contender]:
    """The rows that can be raced: TVM rows and ONNX-based peers that ran without an
    error and kept their network in a file (`artifact`)."""
    chosen = []
    for row in rows:
        if row.get("error") or not row.get("artifact") or not row.get("ms"):
            continue
        peer = (row.get("peer") or {}).get("name")
        kind = "tvm" if peer is None else peer if peer in ONNX_PEERS else None
        if kind is not None:
            chosen.append(Contender(row["name"], row["network"], kind, Path(row["artifact"])))
    return chosen


def race(entrants: Sequence[Contender], input_shape: tuple[int, ...], threads: int,
         rounds: int = ROUNDS, window_s: float | None = None, seed: int = 0,
         progress: Callable[[str], None] | None = None) -> Race:
    """Race `entrants` for `rounds` rounds (see the module doc) with windows of
    `window_s` seconds (default: $EVO_RACE_WINDOW_S, else `WINDOW_S`). A contender that
    fails to load or dies mid-race is dropped with its error; the others go on."""
    if window_s is None:
        window_s = float(os.environ.get(WINDOW_VARIABLE, WINDOW_S))
    result = Race(rounds, window_s, list(entrants), {c.name: [] for c in entrants})
    workers: dict[str, _Worker] = {}
    try:
        for c in entrants:
            workers[c.name] = _start(c, input_shape, threads, window_s, seed)
        for c in entrants:
            error = _await_line(workers[c.name], READY_TIMEOUT_S, expect="ready")
            if error:
                result.errors[c.name] = error
        alive = [c for c in entrants if c.name not in result.errors]
        for number in range(rounds):
            shift = number % max(len(alive), 1)
            for c in alive[shift:] + alive[:shift]:
                result.ms[c.name].append(_turn(workers[c.name], c, result))
            alive = [c for c in alive if c.name not in result.errors]
            if progress:
                progress(f"head to head: round {number + 1} of {rounds}")
    finally:
        for worker in workers.values():
            _stop(worker)
    return result


@dataclass
class _Worker:
    process: subprocess.Popen
    log: IO[str]  # its stderr: an unnamed temporary file (a pipe nobody reads could fill)


def _start(c: Contender, input_shape: tuple[int, ...], threads: int, window_s: float,
           seed: int) -> _Worker:
    shape = ",".join(str(n) for n in input_shape)
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by _stop
    process = subprocess.Popen(
        [sys.executable, "-m", "evo.bench.race_worker", c.kind, str(c.path), shape,
         str(threads), str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=log, text=True,
        env={**os.environ, "TVM_NUM_THREADS": str(threads), WINDOW_VARIABLE: str(window_s)})
    return _Worker(process, log)


def _turn(worker: _Worker, c: Contender, result: Race) -> float | None:
    try:
        worker.process.stdin.write("go\n")
        worker.process.stdin.flush()
    except OSError:
        pass  # it died; _await_line reports why
    line = _await_line(worker, TURN_TIMEOUT_S)
    try:
        return float(line)
    except ValueError:
        result.errors[c.name] = line
        return None


def _await_line(worker: _Worker, timeout_s: float, expect: str | None = None) -> str:
    """The worker's next stdout line; if `expect` is given, "" when it is that line, else
    the error: the worker's last stderr line when it died, or a timeout."""
    process = worker.process
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline().strip() if ready else None
    if line is None:
        process.kill()
        return f"no answer within {timeout_s:.0f} s"
    if not line:
        process.wait()
        worker.log.seek(0)
        lines = [text for text in worker.log.read().splitlines() if text.strip()]
        return lines[-1] if lines else f"worker exited with code {process.returncode}"
    if expect is not None:
        return "" if line == expect else f"unexpected answer {line[:100]!r}"
    return line


def _stop(worker: _Worker) -> None:
    process = worker.process
    try:
        process.stdin.write("quit\n")
        process.stdin.close()
        process.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
    worker.log.close()


def _quartiles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    if len(values) == 1:
        return [values[0], values[0]]
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return [low, high]
