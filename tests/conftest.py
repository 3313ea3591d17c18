"""Shared fixtures (the TVM target every test compiles for) and how pytest-xdist
shares the suite between its processes (`make test` runs `--dist loadgroup`)."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest

# evo bench times each TVM network in 5 fresh processes; one keeps the suite's many
# small benches fast and still runs the real child (tests that count pass their own).
os.environ.setdefault("EVO_TIMING_PROCESSES", "1")
os.environ.setdefault("EVO_RACE_WINDOW_S", "0.02")  # evo bench's head-to-head race

# Files of long, independent tests without module fixtures: each test is scheduled on
# its own, so that no process is left with a file's long tests at the end.
SPREAD = {"test_bench_metaschedule.py", "test_bench_command.py", "test_search_resume.py",
          "test_machinery_midrun.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every other file is one group, run by one process in order: its module fixtures
    are made once, and the docs examples of a page run in sequence in one folder."""
    for item in items:
        path = item.nodeid.split("::")[0]
        if PurePosixPath(path).name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(path))


@pytest.fixture(scope="session")
def target():
    from evo.target import make_target

    return make_target()
