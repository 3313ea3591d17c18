"""What `evo resume` takes from a run folder, and what only from this machine.

A run folder may come from someone else, so its `config.json` decides the search
(model, seed, strategy, population, capacity settings, ...) but not where or how
this machine measures. The machine-local options are the resume's command line:

- a Dask scheduler or an RPC runner is never taken from `config.json`: when it names
  one and the command line names neither (nor `--local`), the resume is refused;
- `--local` measures on this machine (local processes, no runner);
- the number of parallel builds is `--jobs`, else all cores; the build timeout is
  `--build-timeout`, else the default;
- the measurement cache is `--cache`; else the folder's own cache (`{run}/...`,
  never through a link or out of the folder); else a cache elsewhere that
  config.json names only if it exists here (a resume on the machine that ran the
  search; it is checked to be a measurement cache before use); else the default.

Model code named by the folder is imported only when asked: see
`evo.networks.trust.check_model_code`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from evo.errors import UsageError
from evo.measure import check_measurement_options
from evo.search.config import RUN_FOLDER, RunConfig


@dataclass(frozen=True)
class MachineOptions:
    """The machine-local options of one resume (None: not given)."""

    backend: str | None = None
    scheduler: str | None = None
    runner: str | None = None
    jobs: int | None = None
    cache: str | None = None
    local: bool = False
    build_timeout_s: float | None = None

    @classmethod
    def of(cls, config: RunConfig) -> MachineOptions:
        """The options `config` was made with on this machine's command line."""
        return cls(config.backend, config.scheduler, config.runner, config.jobs, config.cache,
                   build_timeout_s=config.build_timeout_s)


def machine_config(config: RunConfig, options: MachineOptions, folder: Path) -> RunConfig:
    """`config` with its machine-local fields taken from `options` (see the module)."""
    remote = _remote(config)
    chosen = options.runner or options.scheduler or options.backend == "dask"
    if options.local and chosen:
        raise UsageError("--local measures on this machine: leave out --runner, --scheduler "
                         "and --backend dask")
    if remote and not chosen and not options.local:
        raise UsageError(f"{folder}/config.json measures {remote}; evo resume does not "
                         "connect to an address from a run folder: give it again "
                         "(--runner / --backend dask --scheduler) or pass --local")
    backend = options.backend or "loky"
    check_measurement_options(config.evaluator, options.runner, backend, options.scheduler)
    cache = options.cache if options.cache is not None else own_cache(config, folder)
    timeout = options.build_timeout_s
    return replace(config, backend=backend, scheduler=options.scheduler, runner=options.runner,
                   jobs=options.jobs, cache=cache,
                   build_timeout_s=RunConfig.build_timeout_s if timeout is None else timeout)


def own_cache(config: RunConfig, folder: Path) -> str | None:
    """The measurement cache `config` names for the run in `folder`, checked: the
    folder's own (`{run}/...`) inside it, reached through no link, a regular file if
    it exists; one elsewhere only if it exists (evo creates no file a received folder
    names outside itself). None when `config` names none (the default cache)."""
    path = config.cache_path(folder)
    if path is None:
        return None
    inner = Path(os.path.normpath(Path(path).absolute()))
    try:
        parts = inner.relative_to(Path(os.path.normpath(Path(folder).absolute()))).parts
    except ValueError:
        if config.cache.startswith(RUN_FOLDER):
            raise UsageError(f"{folder}/config.json: cache {config.cache!r} leaves the run "
                             "folder") from None
        if not Path(path).is_file():
            raise UsageError(f"{folder}/config.json names the cache {path}, which is not "
                             "here; pass --cache PATH (the same path creates it)") from None
        return path
    where = Path(folder)
    for index, part in enumerate(parts):
        where = where / part
        try:
            mode = os.lstat(where).st_mode
        except FileNotFoundError:
            break
        wanted = stat.S_ISREG if index == len(parts) - 1 else stat.S_ISDIR
        if not wanted(mode):  # lstat: a link is neither
            raise UsageError(f"{where} is a link or not a regular file; evo does not follow "
                             "links or open special files in a run folder")
    return str(Path(folder) / Path(*parts))


def _remote(config: RunConfig) -> str | None:
    """What in `config` would make this machine connect elsewhere, as words, or None."""
    if config.runner not in (None, "", "local"):
        return f"on the RPC runner {config.runner}"
    if config.backend == "dask" or config.scheduler:
        return f"with the Dask scheduler {config.scheduler}"
    return None
