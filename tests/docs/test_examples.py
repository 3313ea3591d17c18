"""Every shell example of the README and of docs/*.md runs and exits 0.

Each page's blocks run in order, in one working directory of their own (so a run
folder one block makes is there for the next), with a fresh EVO_CACHE beside it. The
README runs first; every docs page starts from a copy of the directory the README's
tour left (its `runs/demo` and `runs/demo/winner`). The working directory links
`.venv` to this environment and sits next to a link `shared` to the repository's
`../shared`, so `. .venv/bin/activate` and `../shared/data/...` mean what they mean
in a clone. Blocks marked not-run, slow (without EVO_DOCS_SLOW=1) or needing
something missing are skipped with the marker's reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, Block, parse, shell_blocks

BLOCKS = shell_blocks()
TOUR = "README.md"
SLOW = os.environ.get("EVO_DOCS_SLOW") == "1"
TIMEOUT_S = 900


def skip_reason(block: Block, work: Path) -> str | None:
    """Why `block` is not run here, or None to run it."""
    markers = block.markers()
    for kind, value in markers:
        if kind == "not-run":
            return f"not run: {value}"
    for kind, value in markers:
        if kind == "slow" and not SLOW:
            return f"slow: {value} (EVO_DOCS_SLOW=1 runs it)"
    for kind, value in markers:
        if kind == "needs" and not ((work / value).exists() if "/" in value
                                    else shutil.which(value)):
            return f"needs {value}, which is missing here"
    return None


def run(block: Block, work: Path, env: dict[str, str]) -> str | None:
    """Run the block's script with bash in `work`; None when it exits 0, else why not."""
    script = block.script()
    try:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"{block.id} took more than {TIMEOUT_S} s:\n{script}"
    if done.returncode == 0:
        return None
    return (f"{block.id} exited {done.returncode}:\n{script}\n--- stdout (end)\n"
            f"{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")


class PageRun:
    """A page's working directory and how far its blocks have run."""

    def __init__(self, page: str, base: Path, start_from: Path | None) -> None:
        self.blocks = [block for block in parse(page) if block.shell]
        self.work = base / "main"
        if start_from is None:
            self.work.mkdir()
            venv = ROOT / ".venv" if (ROOT / ".venv").is_dir() else Path(sys.prefix)
            (self.work / ".venv").symlink_to(venv)
        else:
            shutil.copytree(start_from, self.work, symlinks=True)
        if (ROOT.parent / "shared").exists():
            (base / "shared").symlink_to(ROOT.parent / "shared")
        self.env = {**os.environ, "EVO_CACHE": str(base / "cache"),
                    "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.next = 0
        self.failed: str | None = None

    def step(self) -> tuple[str, str]:
        """Handle the next block: ("ok", ""), ("skip", reason) or ("fail", message)."""
        block = self.blocks[self.next]
        self.next += 1
        if self.failed is not None:
            return "skip", f"an earlier block of {block.page} failed: {self.failed.splitlines()[0]}"
        reason = skip_reason(block, self.work)
        if reason is not None:
            return "skip", reason
        error = run(block, self.work, self.env)
        if error is not None:
            self.failed = error
            return "fail", error
        return "ok", ""

    def finish(self) -> None:
        while self.next < len(self.blocks):
            self.step()


@pytest.fixture(scope="session")
def page_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PageRun]:
    """Every page's PageRun, made when first asked for (see `page_run`)."""
    return {}


def page_run(runs: dict[str, PageRun], page: str,
             factory: pytest.TempPathFactory) -> PageRun:
    """The page's PageRun; a docs page's starts from the README tour's finished directory."""
    if page not in runs:
        start = None
        if page != TOUR:
            tour = page_run(runs, TOUR, factory)
            tour.finish()
            if tour.failed is not None:
                pytest.skip(f"the README tour failed: {tour.failed.splitlines()[0]}")
            start = tour.work
        runs[page] = PageRun(page, factory.mktemp(Path(page).stem), start)
    return runs[page]


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example_runs(block: Block, page_runs: dict[str, PageRun],
                      tmp_path_factory: pytest.TempPathFactory) -> None:
    state = page_run(page_runs, block.page, tmp_path_factory)
    index = state.blocks.index(block)
    while state.next < index:  # earlier blocks (when run alone, e.g. with -k)
        state.step()
    assert state.next == index, f"{block.id} already handled"
    outcome, message = state.step()
    if outcome == "skip":
        pytest.skip(message)
    assert outcome == "ok", message
