"""Start or resume a run folder: lock it, open its store, run the loop, record the stop."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from evo.errors import INFRASTRUCTURE_EXIT, InfrastructureError, UsageError
from evo.host import describe_host, host_changes, host_label
from evo.networks.trust import check_model_code
from evo.search.config import RunConfig
from evo.search.engine import Budget, Search, SearchState
from evo.search.received import MachineOptions, machine_config
from evo.search.signals import StopSignals
from evo.store.lock import RunLock, holder_pid
from evo.store.run_store import DB_NAME, RunStore


def start_run(config: RunConfig, folder: Path, quiet: bool = False) -> int:
    """Create `folder`, write its config and store, and run the search in it."""
    folder = Path(folder)
    if (folder / DB_NAME).exists():
        raise UsageError(f"{folder} already holds a run; continue it with "
                         f"`evo resume {shlex.quote(str(folder))}` or choose another --out")
    config = config.with_cache_in(folder)
    # Build the network first: a bad --model must not leave an empty run folder.
    try:
        context = _prepare(config, folder)
    except KeyboardInterrupt:
        print("stopped before the search began (checking the machinery); nothing was "
              "written: run the same command again", flush=True)
        raise
    folder.mkdir(parents=True, exist_ok=True)
    lock = RunLock(folder)
    try:
        config.save(folder)
        store = RunStore.create(folder)
        budget = Budget(config.generations + 1, config.time_budget_s)
        return _run(config, folder, store, budget, quiet, context)
    finally:
        lock.release()


def resume_run(folder: Path, generations: int | None = None, time_budget_s: float | None = None,
               quiet: bool = False, machine: MachineOptions | None = None,
               model: str | None = None, trust_model_code: bool = False) -> int:
    """Continue a run from its last finished generation.

    Without options it runs to the configured number of generations (and the
    configured time budget, counted afresh); `--generations N` runs N more
    generations, `--time-budget T` for T more time. Where and how it measures comes
    from `machine` (this machine's command line), not from the folder, and model
    code the folder names is imported only with `trust_model_code` or the same
    `model` (see `evo.search.received`, `evo.networks.trust`).

    Everything is checked before anything is written: the config, the options, the
    model code, the lock file, the store (SQLite's check and every field and id,
    `RunStore.load`), the network and the measurement cache. Only then is the lock
    taken, the store made (a run killed before it made one) and a session recorded.
    """
    folder = Path(folder)
    config = RunConfig.load(folder)
    if generations is not None and generations < 0:
        raise UsageError("--generations must be >= 0")
    if time_budget_s is not None and not time_budget_s > 0:
        raise UsageError("--time-budget must be positive")
    check_model_code(config.model, f"{folder}/config.json", trust_model_code, model)
    config = machine_config(config, machine or MachineOptions(), folder)
    holder = holder_pid(folder)
    if holder is not None:
        raise UsageError(f"{folder} is being run by another process"
                         f"{f' (pid {holder})' if holder > 0 else ''}")
    store = RunStore.open(folder) if os.path.lexists(folder / DB_NAME) else None
    try:
        checkpoints = store.load(trim=False).checkpoints if store is not None else []
        done = checkpoints[-1].generation if checkpoints else -1
        until = done + 1 + generations if generations is not None else config.generations + 1
        seconds = time_budget_s if time_budget_s is not None else config.time_budget_s
        if generations is None and time_budget_s is not None:
            until = sys.maxsize
        context = _prepare(config, folder)
    except BaseException:
        if store is not None:
            store.close()
        raise
    try:
        lock = RunLock(folder)
    except BaseException:
        context.close()
        if store is not None:
            store.close()
        raise
    try:
        if store is None:
            store = RunStore.create(folder)
        return _run(config, folder, store, Budget(until, seconds), quiet, context)
    finally:
        lock.release()


def _prepare(config: RunConfig, folder: Path):
    from evo.search.evaluate import build_context

    return build_context(config, folder)


def _run(config: RunConfig, folder: Path, store: RunStore, budget: Budget, quiet: bool,
         context) -> int:
    command = " ".join(shlex.quote(a) for a in sys.argv)
    host = describe_host(config.runner)
    try:  # reads the store (refusing damage) before anything is written to it
        search = Search(config, store, context.variation, context.evaluate,
                        chunk=context.chunk, on_generation=lambda s, log: on_generation(s, log),
                        on_evaluated=lambda n: evals.update(n))
    except BaseException:
        context.close()
        store.close()
        raise
    if config.evaluator == "tvm":
        _warn_if_moved(store.sessions(), host)
    session = store.start_session(os.getpid(), command, host)
    start = search.state.generation + 1
    total = None if budget.until_generation == sys.maxsize else max(
        0, budget.until_generation - start)
    bar = tqdm(total=total, desc=f"{folder.name}", unit="gen", disable=quiet, file=sys.stderr,
               initial=0, dynamic_ncols=True, position=0)
    evals = tqdm(desc="evaluations", unit="cand", disable=quiet, file=sys.stderr,
                 dynamic_ncols=True, position=1, leave=False)

    def on_generation(state: SearchState, log: dict) -> None:
        bar.update(1)
        evals.reset()
        best = f"{log['best_ms']:.3f}ms" if log["best_ms"] is not None else "none"
        speedup = f"{log['speedup']:.2f}x" if log["speedup"] else "-"
        if log.get("speedup_vs_template"):
            speedup += f" ({log['speedup_vs_template']:.2f}x vs template)"
        bar.set_postfix_str(f"gen {log['generation']} best {best} speedup {speedup} "
                            f"legal {log['legal_share']:.0%} evals {log['evaluations']}")
        if quiet:
            print(f"generation {log['generation']}: best {best} speedup {speedup} "
                  f"legal {log['legal_share']:.0%} evaluations {log['evaluations']} "
                  f"front {log['front_size']}", file=sys.stderr, flush=True)

    reason = "crashed"
    try:
        with StopSignals() as signals:
            reason = search.run(budget, signals.requested)
    except InfrastructureError as exc:  # the generation under way is not stored
        reason = "machinery failed"
        print(f"error: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        reason = "interrupted (second signal)"
        raise
    finally:
        evals.close()
        bar.close()
        context.close()
        store.end_session(session, reason)
        _summary(search.state, folder, reason)
        store.close()
    return _exit_code(reason, search.state)


def _exit_code(reason: str, state: SearchState) -> int:
    """0 for a finished run that measured something; 1 for a finished run in which
    nothing could be measured (said on stderr), 3 when the machinery failed, 130 when
    interrupted."""
    if reason == "machinery failed":
        return INFRASTRUCTURE_EXIT
    if reason not in ("completed", "time budget"):
        return 130
    if state.generation >= 0 and not any(e.latency_ms is not None
                                         for e in state.evaluations.values()):
        errors = [e.error for e in state.evaluations.values() if e.error]
        why = f"; first error: {errors[0].splitlines()[0][:300]}" if errors else \
            " (no candidate was legal)"
        print(f"error: nothing could be measured in this run{why}", file=sys.stderr)
        return 1
    return 0


def _warn_if_moved(sessions: list[dict], host: dict) -> None:
    """Say on stderr when the last session that recorded its machine ran on another one:
    the run's stored latencies and the new ones would be compared as if alike."""
    before = next((s["host"] for s in reversed(sessions) if s.get("host")), None)
    if before is None or not (changes := host_changes(before, host)):
        return
    print(f"warning: this run was measured on {host_label(before)} until now and continues on "
          f"{host_label(host)} ({'; '.join(changes)}); its stored latencies and the new ones "
          "will be compared as if alike; a new run compares like with like.",
          file=sys.stderr, flush=True)


def _summary(state: SearchState, folder: Path, reason: str) -> None:
    best = None
    if state.generation >= 0:
        from evo.search.selection import best_feasible

        best = best_feasible(list(state.individuals), state.evaluations)
    print(f"stopped: {reason} after generation {state.generation} "
          f"({state.evaluation_count} evaluations)")
    if best is not None and state.original_latency:
        ms = state.evaluations[best].latency_ms
        print(f"best legal: individual {best}, {ms:.4f} ms, "
              f"{state.original_latency / ms:.2f}x faster than the original "
              f"({state.original_latency:.4f} ms, unscheduled loops)")
        t_ms = state.template_latency
        if t_ms:
            print(f"            {t_ms / ms:.2f}x faster than the original with the template "
                  f"schedule ({t_ms:.4f} ms)")
    quoted = shlex.quote(str(folder))
    if reason not in ("completed", "time budget"):
        print(f"resume with: evo resume {quoted}")
    elif state.generation >= 0:
        print(f"study it with: evo status {quoted} ; evo lineage {quoted} --best ; "
              f"evo report {quoted}")
