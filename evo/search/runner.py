"""Start or resume a run folder: lock it, open its store, run the loop, record the stop."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from evo.errors import INFRASTRUCTURE_EXIT, InfrastructureError, UsageError
from evo.host import describe_host, host_changes, host_label
from evo.networks.trust import check_model_code
from evo.outputs import check_appendable, open_appending
from evo.search.config import CONFIG_NAME, RunConfig
from evo.search.engine import Budget, Search, SearchState
from evo.search.progress import PROGRESS_NAME, RunProgress
from evo.search.received import MachineOptions, machine_config
from evo.search.signals import ACKNOWLEDGE_START, StopSignals
from evo.store.lock import RunLock, holder_pid
from evo.store.run_store import DB_NAME, RunStore


def start_run(config: RunConfig, folder: Path, quiet: bool = False) -> int:
    """Create `folder`, write its config and store, and run the search in it.

    A folder that holds a run already (its `config.json` or `run.sqlite`, even as a
    link) is refused before anything is made or written, and so is a
    `progress.jsonl` in it that evo would not write (`check_appendable`)."""
    folder = Path(folder)
    if any(os.path.lexists(folder / name) for name in (CONFIG_NAME, DB_NAME)):
        raise UsageError(f"{folder} already holds a run; continue it with "
                         f"`evo resume {shlex.quote(str(folder))}` or choose another --out")
    check_appendable(folder / PROGRESS_NAME)
    config = config.with_cache_in(folder)
    # Build the network first: a bad --model must not leave an empty run folder.
    context = _prepare(config, folder, "began", "run the same command again")
    if context is None:
        return 130
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
    model code, the lock file and `progress.jsonl`, the store (SQLite's check and
    every field and id, `RunStore.load`), the network and the measurement cache.
    Only then is the lock taken, the store made (a run killed before it made one)
    and a session recorded.
    """
    folder = Path(folder)
    config = RunConfig.load(folder)
    if generations is not None and generations < 0:
        raise UsageError("--generations must be >= 0")
    if time_budget_s is not None and not time_budget_s > 0:
        raise UsageError("--time-budget must be positive")
    check_model_code(config.model, f"{folder}/config.json", trust_model_code, model)
    config = machine_config(config, machine or MachineOptions(), folder)
    check_appendable(folder / PROGRESS_NAME)
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
        context = _prepare(config, folder, "resumed",
                           f"evo resume {shlex.quote(str(folder))}")
    except BaseException:
        if store is not None:
            store.close()
        raise
    if context is None:
        if store is not None:
            store.close()
        return 130
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


def _prepare(config: RunConfig, folder: Path, began: str, again: str):
    """The search's context (network, capacity reference, checked machinery), or None
    when SIGINT or SIGTERM asked to stop meanwhile (said on stdout).

    The first signal is honoured when the checks are done, never in the middle of
    starting the build workers (an interrupt there can leave the worker pool half
    made, and the exit waiting for it); a second one stops at once."""
    from evo.search.evaluate import build_context

    stopped = (f"stopped before the search {began} (checking the machinery); nothing "
               f"was written: {again}")
    with StopSignals(ACKNOWLEDGE_START) as signals:
        try:
            with signals.released():
                context = build_context(config, folder)
        except KeyboardInterrupt:
            print(stopped, flush=True)
            raise
        except Exception:
            if not signals.requested():
                raise
            # A helper started in the microseconds between its fork and its move to
            # a process group of its own gets the terminal's Ctrl-C too and dies: the
            # check fails because of the stop that was asked for.
            print(stopped, flush=True)
            return None
        if signals.requested():
            context.close()
            print(stopped, flush=True)
            return None
    return context


def _run(config: RunConfig, folder: Path, store: RunStore, budget: Budget, quiet: bool,
         context) -> int:
    """Run the search in `folder` as one session of its store and record how it ended.

    SIGINT and SIGTERM are the search's (`StopSignals`) from before the session is
    recorded until its end is: the first asks the loop to stop at its next safe
    point; a second stops at once what is under way, the search or the closing of
    the machinery after it, and the session is still ended with its reason (an
    interrupted session, resumable, never one that looks crashed)."""
    command = " ".join(shlex.quote(a) for a in sys.argv)
    host = describe_host(config.runner)
    try:  # reads the store (refusing damage) before anything is written to it
        search = Search(config, store, context.variation, context.evaluate,
                        chunk=context.chunk, on_generation=lambda s, log: progress.generation(log),
                        on_evaluated=lambda n: progress.evaluated(n))
        log_fd = open_appending(folder / PROGRESS_NAME)
    except BaseException:
        context.close()
        store.close()
        raise
    if config.evaluator == "tvm":
        _warn_if_moved(store.sessions(), host)
    start = search.state.generation + 1
    left = None if budget.until_generation == sys.maxsize else max(
        0, budget.until_generation - start)
    reason = "crashed"
    with StopSignals() as signals:  # outside `released()` a second signal is only counted
        try:
            session = store.start_session(os.getpid(), command, host)
        except BaseException:
            os.close(log_fd)
            context.close()
            store.close()
            raise
        progress = RunProgress(folder, log_fd, session, config.population, left,
                               budget.seconds, quiet)
        context.evaluate.progress = progress.partial
        try:
            with signals.released():
                reason = search.run(budget, signals.requested)
        except InfrastructureError as exc:  # the generation under way is not stored
            reason = "machinery failed"
            print(f"error: {exc}", file=sys.stderr, flush=True)
        except KeyboardInterrupt as exc:
            reason = f"interrupted ({str(exc) or 'second signal'})"
            raise
        finally:
            _end(signals, progress, context, store, session, reason, search.state, folder)
    return _exit_code(reason, search.state)


def _end(signals: StopSignals, progress: RunProgress, context, store: RunStore, session: int,
         reason: str, state: SearchState, folder: Path) -> None:
    """Close the machinery (a further signal cuts this short: "Ctrl-C again to stop
    now"), then, no signal interrupting, record the session's end, print the summary
    and close the store."""
    try:
        try:
            with signals.released():
                context.close()
        except KeyboardInterrupt:
            pass
    finally:
        progress.close()
        store.end_session(session, reason)
        _summary(state, folder, reason)
        sys.stdout.flush()  # a late signal may end the process by its default action
        store.close()


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
