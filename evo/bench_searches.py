"""The two searches behind `evo bench --model M --time-budget T --out DIR`.

`DIR/search` is a full search (neural and program genes) and `DIR/program-only`
its twin with neural genes off; both have the same model, seed, population and
time budget, and no generation limit (`BENCH_GENERATIONS`), so the budget alone
stops them. Each has its own measurement cache in its folder
(`MEASUREMENT_CACHE`) unless one is given: with a shared cache, the search that
runs second would find the first one's programs already measured and fit more
generations into the same budget. Running the command again reuses a search that used its whole
budget and resumes one that was interrupted with the budget it has left, so a
benchmark stopped by Ctrl-C, a crash or a reboot continues where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evo.analysis import load_run
from evo.analysis.status import FINISHED
from evo.errors import UsageError
from evo.search.config import CONFIG_NAME, RUN_FOLDER, RunConfig
from evo.search.received import MachineOptions
from evo.search.runner import resume_run, start_run
from evo.store.run_store import DB_NAME

BENCH_GENERATIONS = 1_000_000
MEASUREMENT_CACHE = "measurements.sqlite"
# A resumed search with less than this left is counted as finished.
MIN_REMAINING_S = 5.0


@dataclass(frozen=True)
class BenchSearch:
    """One of the two searches: its folder and whether this call ran it."""

    name: str
    folder: Path
    ran: bool


def search_configs(model: str, input_shape: tuple[int, ...] | None, budget_s: float,
                   seed: int, population: int, out: Path, jobs: int | None = None,
                   cache: str | None = None, fisher_bn: str = RunConfig.fisher_bn,
                   threshold: float | None = RunConfig.threshold,
                   capacity: str = RunConfig.capacity,
                   data: str = RunConfig.data,
                   without_genes: tuple[str, ...] | None = None) -> dict[str, RunConfig]:
    """The full search's and the program-only twin's configs, by folder name under `out`.
    `without_genes` (None: the check's default) holds for both.

    Without `cache`, each search gets `{run}/MEASUREMENT_CACHE`: a cache in its own folder
    that moves with it (resumed from any directory, or copied, archived and restored)."""
    common = dict(model=model, input_shape=input_shape, time_budget_s=budget_s, seed=seed,
                  population=population, generations=BENCH_GENERATIONS, jobs=jobs,
                  fisher_bn=fisher_bn, threshold=threshold, capacity=capacity, data=data,
                  without_genes=without_genes)
    return {name: RunConfig(**common, neural=neural,
                            cache=cache or f"{RUN_FOLDER}/{MEASUREMENT_CACHE}")
            for name, neural in (("search", True), ("program-only", False))}


def run_bench_searches(configs: dict[str, RunConfig], out: Path,
                       quiet: bool = False) -> list[BenchSearch]:
    """Start, resume or reuse each search in `out/NAME`, in order.

    Raises UsageError when a folder holds a different search, and KeyboardInterrupt
    when a search was stopped by a signal (its progress is kept for the next call).
    """
    done = []
    for name, config in configs.items():
        folder = out / name
        ran = _ensure(config, folder, quiet)
        done.append(BenchSearch(name, folder, ran))
    return done


def search_seconds(folder: Path) -> float:
    """Search time a run folder has used: the cumulative elapsed time recorded with its
    last finished generation (the budget counts it the same way; a generation cut short
    by a crash is not counted, its work is lost)."""
    return _elapsed(load_run(folder))


def _elapsed(snap) -> float:
    return snap.last.elapsed_s if snap.last is not None else 0.0


def _ensure(config: RunConfig, folder: Path, quiet: bool) -> bool:
    if not (folder / CONFIG_NAME).exists() and not (folder / DB_NAME).exists():
        _check(start_run(config, folder, quiet), folder)
        return True
    snap = load_run(folder)  # one read of the folder: its config, sessions and last checkpoint
    _same_search(snap.config, config, folder)
    if snap.sessions and snap.sessions[-1].get("reason") in FINISHED:
        return False
    remaining = (config.time_budget_s or 0.0) - _elapsed(snap)
    if remaining < MIN_REMAINING_S and snap.last is not None:
        return False
    # The searches' model and machine options are this command line's (`config`).
    _check(resume_run(folder, time_budget_s=max(remaining, MIN_REMAINING_S), quiet=quiet,
                      machine=MachineOptions.of(config), model=config.model), folder)
    return True


def _same_search(existing: RunConfig, wanted: RunConfig, folder: Path) -> None:
    """Raise UsageError unless `folder`'s search is the one wanted. The capacity check
    does not matter to a program-only search (it makes no neural change), so a
    program-only twin is reused whatever check the full search has."""
    capacity = ("fisher_bn", "threshold", "capacity", "data", "without_genes") \
        if wanted.neural else ()
    for name in ("model", "input_shape", "time_budget_s", "seed", "population", "neural",
                 *capacity):
        have, want = getattr(existing, name), getattr(wanted, name)
        if have != want:
            raise UsageError(f"{folder} holds a search with {name} {have!r}, not {want!r}; "
                             f"use another --out")


def _check(code: int, folder: Path) -> None:
    if code != 0:
        # the runner already printed why it stopped
        raise KeyboardInterrupt(f"search in {folder} stopped")
