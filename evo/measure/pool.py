"""Where builds run: local loky worker processes, or the workers of a Dask cluster.

`build_all` yields one `BuildResult` per request as builds finish. A failure of the
pool itself (a loky worker lost, the pool broken, a Dask worker lost with its task,
no Dask worker left, the scheduler gone) is not any candidate's result: it raises
`PoolFailure` after the results that did come back, and the caller decides
(`evo.measure.tvm_evaluator` retries, then stops).

Local workers start in process groups of their own, out of a terminal's Ctrl-C (the
search's to handle, `evo.measure.shield`), and exit within `PARENT_POLL_S` seconds
when the process that started them dies, even by SIGKILL (a watchdog thread notices
the new parent process id); their build children die with them (`PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from evo.measure.build import BuildRequest, BuildResult, build_task
from evo.measure.shield import ignore_ctrl_c, start_loky_workers_in_own_group

WORKER_IDLE_S = 300  # a build worker idle this long exits (joblib's default for loky)
PARENT_POLL_S = 1.0  # how often a worker checks that its parent is alive
DASK_POLL_S = 5.0  # how often a Dask build checks that the cluster still has workers
DASK_NO_WORKER_S = 30.0  # a cluster without workers this long has failed


class PoolFailure(RuntimeError):
    """The build workers failed, not a candidate; the message says how."""


def build_all(requests: list[BuildRequest], jobs: int, backend: str = "loky",
              client: Any = None) -> Iterator[tuple[int, BuildResult]]:
    """Build every request; yields (index, result) as builds finish.

    `backend` is "loky" (`jobs` local worker processes) or "dask" (the cluster of the
    `distributed.Client` `client`). Raises PoolFailure when the pool itself fails.
    """
    if not requests:
        return
    try:
        if backend == "loky":
            yield from _build_local(requests, jobs)
        else:
            yield from _build_dask(requests, client)
    except PoolFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the pool raised, it is the pool's
        name = "Dask cluster" if backend == "dask" else "build worker pool"
        raise PoolFailure(f"{name} failed: {type(exc).__name__}: "
                          f"{str(exc).strip()[:200]}") from None


def worker_init(parent: int) -> None:
    """A local build worker's start: ignore Ctrl-C, and exit when `parent` (the process
    that started the pool) is no longer its parent, also if it died before this ran."""
    ignore_ctrl_c()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="evo-exit-with-parent").start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # an orphan: nobody will ever collect its builds


def stop_local_workers() -> None:
    """Stop this process's local build workers now (builds in flight are dropped); the
    next local build starts new ones. Without it a Ctrl-C that interrupted the start of
    the pool could leave the interpreter's exit waiting for idle workers to time out."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        with contextlib.suppress(RuntimeError):  # its start was itself interrupted
            executor.shutdown(wait=True, kill_workers=True)


def _build_local(requests: list[BuildRequest], jobs: int
                 ) -> Iterator[tuple[int, BuildResult]]:
    from joblib.externals.loky import as_completed, get_reusable_executor

    start_loky_workers_in_own_group()
    threads = str(max(1, (os.cpu_count() or 1) // jobs))  # as joblib limits its workers
    executor = get_reusable_executor(
        max_workers=jobs, timeout=WORKER_IDLE_S, initializer=worker_init,
        initargs=(os.getpid(),),
        env={var: threads for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS")})
    futures = {executor.submit(build_task, r): i for i, r in enumerate(requests)}
    for future in as_completed(futures):
        yield futures[future], future.result()


def _build_dask(requests: list[BuildRequest], client: Any
                ) -> Iterator[tuple[int, BuildResult]]:
    """Builds as tasks of the cluster; a worker lost mid-task makes Dask retry it
    elsewhere (and give up with KilledWorker); no worker at all for `DASK_NO_WORKER_S`
    raises PoolFailure instead of waiting for ever."""
    from distributed import wait

    futures = {client.submit(build_task, r, pure=False): i for i, r in enumerate(requests)}
    pending = set(futures)
    alone_since: float | None = None
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=DASK_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                if client.scheduler_info(n_workers=-1)["workers"]:
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.monotonic()
                elif time.monotonic() - alone_since >= DASK_NO_WORKER_S:
                    raise PoolFailure(f"Dask cluster failed: no worker for "
                                      f"{DASK_NO_WORKER_S:g} s") from None
                continue
            for future in done:
                yield futures[future], future.result()
    finally:
        for future in pending:
            future.cancel()
