"""Where evo keeps what it caches for a user, whatever the working directory:
`$EVO_CACHE` when set, else `${XDG_CACHE_HOME:-~/.cache}/evo`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$EVO_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/evo`."""
    if os.environ.get("EVO_CACHE"):
        return Path(os.environ["EVO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "evo"


def default_measurement_cache() -> str:
    """The measurement cache runs share unless given `--cache`:
    `cache_dir()/measurements.sqlite`."""
    return str(cache_dir() / "measurements.sqlite")
